import Foundation
import OrcastraPostgres
import OrcastraStore

/// A signed-in browser: the token's name and scopes, and the CSRF token its forms must carry.
public struct DashboardSession: Sendable, Hashable {
    public var tokenName: String
    public var scopes: Set<APIScope>
    public var csrfToken: String

    /// `tasks:write` or `admin`: may cancel, retry and resolve.
    public var canWrite: Bool { scopes.contains(.tasksWrite) || scopes.contains(.admin) }
    public var canRead: Bool { scopes.contains(.tasksRead) || scopes.contains(.admin) }

    public init(tokenName: String, scopes: Set<APIScope>, csrfToken: String) {
        self.tokenName = tokenName
        self.scopes = scopes
        self.csrfToken = csrfToken
    }
}

/// Why `/login` refused a token, as the page says it.
public enum SignInRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    case rejected(APITokenRejection)
    case lacksRead

    public var description: String {
        switch self {
        case .rejected(let rejection): rejection.description.replacingOccurrences(of: "The bearer token", with: "This token")
        case .lacksRead: "This token lacks the scope tasks:read, which the dashboard needs to show anything (`orcastra token create --scopes tasks:read`)."
        }
    }
}

/// Sessions in `orcastra.dashboard_sessions` (Migrations/0015_dashboard_sessions.sql).
public struct DashboardSessions: Sendable {
    public let pool: PostgresPool
    /// How long a session lasts after sign-in.
    public var lifetime: Duration

    public init(pool: PostgresPool, lifetime: Duration = .seconds(12 * 3600)) {
        self.pool = pool
        self.lifetime = lifetime
    }

    /// Checks `token` like the API does and opens a session for it; returns the cookie's value
    /// (the only place the session id exists) and the session.
    public func signIn(token: String) async throws -> Result<(cookie: String, session: DashboardSession), SignInRefusal> {
        let trimmed = token.trimmingCharacters(in: .whitespacesAndNewlines)
        let scopes: Set<APIScope>
        switch try await APITokens(pool: pool).authenticate(trimmed) {
        case .failure(let rejection): return .failure(.rejected(rejection))
        case .success(let granted): scopes = granted
        }
        guard scopes.contains(.tasksRead) || scopes.contains(.admin) else { return .failure(.lacksRead) }
        let prefix = String(trimmed.split(separator: "_")[1])
        let cookie = Self.randomToken(), csrf = Self.randomToken()
        let seconds = Double(lifetime.components.seconds)
        let rows = try await pool.query("""
            WITH expired AS (DELETE FROM orcastra.dashboard_sessions WHERE expires_at < now())
            INSERT INTO orcastra.dashboard_sessions (session_hash, token_id, csrf_token, expires_at)
            SELECT sha256(convert_to(\(cookie), 'UTF8')), t.id, \(csrf), now() + \(seconds) * interval '1 second'
            FROM orcastra.api_tokens t WHERE t.prefix = \(prefix)
            RETURNING (SELECT name FROM orcastra.api_tokens WHERE prefix = \(prefix)) AS name
            """)
        guard let name: String = try rows.first?.decode("name") else { return .failure(.rejected(.unknown)) }
        return .success((cookie, DashboardSession(tokenName: name, scopes: scopes, csrfToken: csrf)))
    }

    /// The session of a cookie's value, or nil when there is none, it expired, or its token was
    /// revoked or expired since.
    public func session(cookie: String) async throws -> DashboardSession? {
        guard !cookie.isEmpty, cookie.utf8.count <= 100 else { return nil }
        guard let row = try await pool.query("""
            SELECT t.name, t.scopes, s.csrf_token
            FROM orcastra.dashboard_sessions s JOIN orcastra.api_tokens t ON t.id = s.token_id
            WHERE s.session_hash = sha256(convert_to(\(cookie), 'UTF8')) AND s.expires_at > now()
              AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
            """).first else { return nil }
        return DashboardSession(tokenName: try row.decode("name"),
                                scopes: Set(try row.decode("scopes", as: [String].self).compactMap(APIScope.init(rawValue:))),
                                csrfToken: try row.decode("csrf_token"))
    }

    public func signOut(cookie: String) async throws {
        _ = try await pool.query("DELETE FROM orcastra.dashboard_sessions WHERE session_hash = sha256(convert_to(\(cookie), 'UTF8'))")
    }

    /// 256 random bits, base64url without padding (43 characters, all valid in a cookie).
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Constant-time comparison of a form's CSRF token with the session's.
    static func matches(_ given: String?, _ expected: String) -> Bool {
        guard let given else { return false }
        return APITokens.constantTimeEqual(Array(given.utf8), Array(expected.utf8))
    }
}
