import ArgumentParser
import Foundation
import OrcastraPostgres

/// Where a long-running process LISTENs: the worker's and orchestrator's `--listen-database-url`.
public struct ListenOptions: ParsableArguments {
    public init() {}

    @Option(name: .customLong("listen-database-url"),
            help: ArgumentHelp("Where to LISTEN, when not at the database URL (URL or key=value string).",
                               discussion: "Default: ORCASTRA_LISTEN_DATABASE_URL, then the database URL. Set it when the database URL goes through PgBouncer in transaction mode: LISTEN needs a session of its own, straight to PostgreSQL or through a session-mode pool (docs/failover.md)."))
    public var listenDatabaseURL: String?

    /// A malformed flag is a usage error (exit 64), found before anything starts.
    public func validate() throws {
        if let listenDatabaseURL, let problem = ConnectionAddress.parseProblem(listenDatabaseURL) {
            throw ValidationError("\(MalformedConnectionString(source: "--listen-database-url", problem: problem))")
        }
    }

    /// The LISTEN connection string given by `--listen-database-url` or `ORCASTRA_LISTEN_DATABASE_URL`,
    /// checked; nil when neither is set (LISTEN then uses the database URL).
    public func listenConninfo() throws -> String? {
        if let listenDatabaseURL, !listenDatabaseURL.isEmpty { return try DatabaseOptions.checked(listenDatabaseURL, source: "--listen-database-url") }
        if let value = ProcessInfo.processInfo.environment["ORCASTRA_LISTEN_DATABASE_URL"], !value.isEmpty {
            return try DatabaseOptions.checked(value, source: "ORCASTRA_LISTEN_DATABASE_URL")
        }
        return nil
    }
}
