import ArgumentParser
import Foundation
import OrcastraClient
import OrcastraCommandLine
import OrcastraStore

/// `orcastra token`: bearer tokens for the HTTP API (docs/api.md).
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Create, list and revoke bearer tokens for the HTTP API.",
        subcommands: [TokenCreateCommand.self, TokenListCommand.self, TokenRevokeCommand.self])
}

/// `orcastra token create --name NAME --scopes tasks:read,tasks:write [--expires-in 30d]`.
struct TokenCreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a token and print it once (only its SHA-256 is stored).",
        discussion: """
            Scopes: tasks:read (read tasks, events and templates), tasks:write (submit, cancel, retry, \
            resolve), templates:write (register templates), admin (everything).

            Examples:
              orcastra token create --name ci --scopes tasks:read,tasks:write --expires-in 30d
              export ORCASTRA_TOKEN=$(orcastra token create --name ops --scopes admin)
            """)

    @Option(help: "A unique name for the token (letters, digits, '.', '_', '-').")
    var name: String

    @Option(help: "Comma-separated: tasks:read, tasks:write, templates:write, admin.")
    var scopes: String

    @Option(help: "The token stops working after this long, e.g. 30d, 12h, 90m (default: never).")
    var expiresIn: String?

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        var parsed: Set<APIScope> = []
        for text in scopes.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !text.isEmpty {
            guard let scope = APIScope(rawValue: text) else {
                throw CLIFailure(message: "Unknown scope '\(text)': use \(APIScope.allCases.map(\.rawValue).joined(separator: ", ")).",
                                 exitCode: .usage)
            }
            parsed.insert(scope)
        }
        guard !parsed.isEmpty else { throw CLIFailure(message: "Name at least one scope with --scopes.", exitCode: .usage) }
        let expiresAt = try expiresIn.map { Date().addingTimeInterval(try Self.seconds($0)) }
        let scopeSet = parsed
        let created = try await CLI.withClient(database) { client in
            try await APITokens(pool: client.pool).create(name: name, scopes: scopeSet, expiresAt: expiresAt)
        }
        print(created.token)
        CLI.writeError("Created token \(name) (\(created.info.scopes.map(\.rawValue).joined(separator: ", "))). It is shown only this once.\n")
    }

    /// `30d` is thirty days; anything else is a duration as in templates (`12h`, `90m`).
    static func seconds(_ text: String) throws -> TimeInterval {
        if text.hasSuffix("d"), let days = Int(text.dropLast()), days > 0, days <= 3660 {
            return TimeInterval(days) * 86_400
        }
        do {
            return Double(try DurationArgument.parse(text).duration.components.seconds)
        } catch {
            throw CLIFailure(message: "--expires-in '\(text)': \(error) (or N days, e.g. 30d).", exitCode: .usage)
        }
    }
}

/// `orcastra token list [--json]`.
struct TokenListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the tokens (never their secrets).")

    @Flag(help: "Print the tokens as JSON.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let tokens = try await CLI.withClient(database) { try await APITokens(pool: $0.pool).list() }
        if json { try CLI.printJSON(tokens); return }
        if tokens.isEmpty { print("No tokens. Create one with `orcastra token create --name NAME --scopes admin`."); return }
        let now = Date()
        print(CLI.table(["NAME", "SCOPES", "CREATED", "EXPIRES", "LAST USED", "STATUS"], tokens.map { token in
            let status = token.revokedAt != nil ? "revoked" : (token.expiresAt.map { $0 <= now } == true ? "expired" : "active")
            return [token.name, token.scopes.map(\.rawValue).joined(separator: ","), CLI.time(token.createdAt),
                    token.expiresAt.map { CLI.time($0) } ?? "never", token.lastUsedAt.map { CLI.time($0) } ?? "-", status]
        }))
    }
}

/// `orcastra token revoke NAME`.
struct TokenRevokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke", abstract: "Revoke a token: requests with it are refused from now on.")

    @Argument(help: "The token's name.")
    var name: String

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        try await CLI.withClient(database) { try await APITokens(pool: $0.pool).revoke(name: name) }
        print("Revoked token \(name).")
    }
}
