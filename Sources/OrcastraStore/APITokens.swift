import Foundation
import OrcastraPostgres

/// What a bearer token of the HTTP API may do. `admin` implies every other scope.
public enum APIScope: String, Sendable, Hashable, CaseIterable, Codable {
    case tasksRead = "tasks:read"
    case tasksWrite = "tasks:write"
    case templatesWrite = "templates:write"
    case admin
}

/// One row of `orcastra.api_tokens` (Migrations/0006_api_tokens.sql), without its hash.
public struct APITokenInfo: Sendable, Hashable, Codable {
    public var name: String
    public var prefix: String
    public var scopes: [APIScope]
    public var createdAt: Date
    public var expiresAt: Date?
    public var revokedAt: Date?
    public var lastUsedAt: Date?

    enum CodingKeys: String, CodingKey {
        case name, prefix, scopes
        case createdAt = "created_at", expiresAt = "expires_at", revokedAt = "revoked_at", lastUsedAt = "last_used_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(prefix, forKey: .prefix)
        try container.encode(scopes, forKey: .scopes)
        try container.encode(createdAt, forKey: .createdAt)
        // Explicit nulls: a script can tell "never" from a missing field.
        try container.encode(expiresAt, forKey: .expiresAt)
        try container.encode(revokedAt, forKey: .revokedAt)
        try container.encode(lastUsedAt, forKey: .lastUsedAt)
    }
}

/// Why a token was not accepted. The HTTP API answers 401 for all of them and says which.
public enum APITokenRejection: Error, Sendable, Equatable, CustomStringConvertible {
    case malformed, unknown, revoked, expired

    public var description: String {
        switch self {
        case .malformed: "The bearer token is not an Orcastra token (orc_…)."
        case .unknown: "The bearer token is not known."
        case .revoked: "The bearer token was revoked."
        case .expired: "The bearer token has expired."
        }
    }
}

public enum APITokenError: Error, Sendable, Equatable, CustomStringConvertible {
    case nameTaken(String)
    case notFound(String)
    case invalidName(String)

    public var description: String {
        switch self {
        case .nameTaken(let name): "A token named \(name) exists already (revoked tokens keep their names). Choose another name."
        case .notFound(let name): "No token named \(name). `orcastra token list` shows the tokens."
        case .invalidName(let name): "'\(name)' is not a token name: use letters, digits, '.', '_' and '-' (at most 100)."
        }
    }
}

/// Bearer tokens of the HTTP API: made by `orcastra token create`, checked by the server.
///
/// A token is `orc_<prefix>_<secret>` with 12 hex digits of prefix and 43 characters of secret
/// (256 random bits). Only its SHA-256 is stored (computed by PostgreSQL, so no crypto library is
/// needed); the prefix finds the row and the hashes are compared in constant time here.
public struct APITokens: Sendable {
    public let pool: PostgresPool

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Creates a token and returns it: the only time its text exists outside the caller.
    public func create(name: String, scopes: Set<APIScope>, expiresAt: Date?) async throws -> (token: String, info: APITokenInfo) {
        guard name.range(of: #"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"#, options: .regularExpression) != nil else {
            throw APITokenError.invalidName(name)
        }
        var generator = SystemRandomNumberGenerator()
        let prefix = (0..<6).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        let secretBytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let secret = Data(secretBytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        let token = "orc_\(prefix)_\(secret)"
        let scopeList = scopes.map(\.rawValue).sorted()
        do {
            let row = try await pool.query("""
                INSERT INTO orcastra.api_tokens (name, prefix, token_hash, scopes, expires_at)
                VALUES (\(name), \(prefix), sha256(convert_to(\(token), 'UTF8')), \(scopeList)::text[], \(expiresAt)::timestamptz)
                RETURNING created_at
                """).first
            let created: Date = try row?.decode("created_at") ?? Date()
            return (token, APITokenInfo(name: name, prefix: prefix, scopes: scopeList.compactMap(APIScope.init(rawValue:)),
                                        createdAt: created, expiresAt: expiresAt))
        } catch let error as PostgresError {
            if case .server(let server) = error, server.sqlState == "23505" { throw APITokenError.nameTaken(name) }
            throw error
        }
    }

    /// Every token, oldest first.
    public func list() async throws -> [APITokenInfo] {
        try await pool.query("""
            SELECT name, prefix, scopes, created_at, expires_at, revoked_at, last_used_at
            FROM orcastra.api_tokens ORDER BY created_at, id
            """).map { row in
            APITokenInfo(name: try row.decode("name"), prefix: try row.decode("prefix"),
                         scopes: try row.decode("scopes", as: [String].self).compactMap(APIScope.init(rawValue:)),
                         createdAt: try row.decode("created_at"), expiresAt: try row.decode("expires_at"),
                         revokedAt: try row.decode("revoked_at"), lastUsedAt: try row.decode("last_used_at"))
        }
    }

    /// Revokes a token at once. Revoking it again changes nothing.
    public func revoke(name: String) async throws {
        let rows = try await pool.query("""
            UPDATE orcastra.api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE name = \(name) RETURNING id
            """)
        if rows.isEmpty { throw APITokenError.notFound(name) }
    }

    /// The scopes of a valid token, or why it is not valid.
    public func authenticate(_ token: String, now: Date = Date()) async throws -> Result<Set<APIScope>, APITokenRejection> {
        let parts = token.split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "orc", parts[1].utf8.count == 12, !parts[2].isEmpty, token.utf8.count <= 200 else {
            return .failure(.malformed)
        }
        let prefix = String(parts[1])
        guard let row = try await pool.query("""
            SELECT encode(token_hash, 'hex') AS stored, encode(sha256(convert_to(\(token), 'UTF8')), 'hex') AS presented,
                   scopes, expires_at, revoked_at
            FROM orcastra.api_tokens WHERE prefix = \(prefix)
            """).first else {
            return .failure(.unknown)
        }
        let stored: String = try row.decode("stored")
        let presented: String = try row.decode("presented")
        guard Self.constantTimeEqual(Array(stored.utf8), Array(presented.utf8)) else { return .failure(.unknown) }
        if try row.decode("revoked_at", as: Date?.self) != nil { return .failure(.revoked) }
        if let expires = try row.decode("expires_at", as: Date?.self), expires <= now { return .failure(.expired) }
        // At most one write a minute per token.
        _ = try await pool.query("""
            UPDATE orcastra.api_tokens SET last_used_at = now()
            WHERE prefix = \(prefix) AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
            """)
        return .success(Set(try row.decode("scopes", as: [String].self).compactMap(APIScope.init(rawValue:))))
    }

    /// Equal length and equal bytes, in time that depends only on the length.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
