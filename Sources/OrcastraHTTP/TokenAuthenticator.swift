import Foundation
import HTTPTypes
import OrcastraPostgres
import OrcastraStore
import Synchronization

/// Checks bearer tokens against `orcastra.api_tokens`, remembering each answer for a moment.
///
/// Without the cache every request costs a round trip to PostgreSQL before its own work; with it, a
/// client sending many requests costs one lookup per `cacheTime`. The price: a token revoked or
/// expired is refused at most `cacheTime` later (1 s by default).
final class TokenAuthenticator: Sendable {
    let tokens: APITokens
    let cacheTime: Duration
    private let cache = Mutex<[String: (scopes: Set<APIScope>, until: ContinuousClock.Instant)]>([:])

    init(pool: PostgresPool, cacheTime: Duration = .seconds(1)) {
        tokens = APITokens(pool: pool)
        self.cacheTime = cacheTime
    }

    /// Returns if `header` carries a valid token with `scope` (or `admin`); throws the problem otherwise.
    func authorize(_ header: String?, scope: APIScope) async throws {
        guard let header, header.count > 7, header.prefix(7).lowercased() == "bearer " else {
            throw unauthorized(header == nil ? "This endpoint needs Authorization: Bearer TOKEN (`orcastra token create`)."
                                             : "The Authorization header must be `Bearer TOKEN`.")
        }
        let token = header.dropFirst(7).trimmingCharacters(in: .whitespaces)
        let scopes = try await scopes(of: token)
        guard scopes.contains(scope) || scopes.contains(.admin) else {
            throw Problem("forbidden", .forbidden, title: "Forbidden",
                          detail: "This token lacks the scope \(scope.rawValue) (it has \(scopes.map(\.rawValue).sorted().joined(separator: ", "))).")
        }
    }

    private func scopes(of token: String) async throws -> Set<APIScope> {
        let now = ContinuousClock.now
        if let cached = cache.withLock({ $0[token] }), cached.until > now { return cached.scopes }
        switch try await tokens.authenticate(token) {
        case .success(let scopes):
            cache.withLock { entries in
                if entries.count > 10_000 { entries.removeAll() }
                entries[token] = (scopes, now + cacheTime)
            }
            return scopes
        case .failure(let rejection):
            throw unauthorized(rejection.description)
        }
    }

    private func unauthorized(_ detail: String) -> Problem {
        var problem = Problem("unauthorized", .unauthorized, title: "Unauthorized", detail: detail)
        problem.headers[.wwwAuthenticate] = "Bearer"
        return problem
    }
}
