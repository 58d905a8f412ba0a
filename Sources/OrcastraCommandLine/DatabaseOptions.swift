import ArgumentParser
import Foundation
import OrcastraDevDB
import OrcastraPostgres

/// Where the database is: the same options and order for every Orcastra executable.
public struct DatabaseOptions: ParsableArguments {
    public init() {}

    @Option(name: .customLong("database-url"),
            help: ArgumentHelp("PostgreSQL connection URL or key=value string.",
                               discussion: "Default: ORCASTRA_DATABASE_URL, then DATABASE_URL, then libpq's PG* variables, then the local development database."))
    public var databaseURL: String?

    /// Resolves the connection string, starting the local development database when nothing is configured.
    public func conninfo(quiet: Bool = false) async throws -> String {
        if let databaseURL, !databaseURL.isEmpty { return databaseURL }
        let environment = ProcessInfo.processInfo.environment
        for name in ["ORCASTRA_DATABASE_URL", "DATABASE_URL"] {
            if let value = environment[name], !value.isEmpty { return value }
        }
        // libpq reads PG* itself from an empty conninfo.
        let libpqVariables = ["PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE"]
        if libpqVariables.contains(where: { environment[$0].map { !$0.isEmpty } ?? false }) { return "" }
        let devDB = try DevDatabase.cluster()
        let wasRunning = try devDB.status() != nil
        let url = try await devDB.start()
        if !wasRunning && !quiet {
            FileHandle.standardError.write(Data("Started the local development PostgreSQL in \(devDB.dataDirectory.path) (stop it with `orcastra dev-db stop`).\n".utf8))
        }
        return url
    }
}

/// The project's local development database.
public enum DevDatabase {
    /// `ORCASTRA_DEV_DB_DIR`, else `.orcastra/postgres` in the current folder.
    public static var directory: URL {
        if let configured = ProcessInfo.processInfo.environment["ORCASTRA_DEV_DB_DIR"], !configured.isEmpty {
            return URL(fileURLWithPath: configured)
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".orcastra/postgres")
    }

    public static func cluster() throws -> LocalPostgres {
        try LocalPostgres(dataDirectory: directory)
    }
}
