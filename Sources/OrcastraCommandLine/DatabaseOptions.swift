import ArgumentParser
import Foundation
import OrcastraConfiguration
import OrcastraDevDB
import OrcastraPostgres

/// Where the database is: the same options and order for every Orcastra executable.
public struct DatabaseOptions: ParsableArguments {
    public init() {}

    @Option(name: .customLong("database-url"),
            help: ArgumentHelp("PostgreSQL connection URL or key=value string.",
                               discussion: "Default: ORCASTRA_DATABASE_URL, then DATABASE_URL, then libpq's PG* variables, then the local development database."))
    public var databaseURL: String?

    // Read before parsing by OrcastraConfiguration (ConfiguredLaunch.locateFile); declared here so
    // that every command with a database accepts it and lists it in --help.
    @Option(help: ArgumentHelp("Read settings from this orcastra.yaml (docs/configuration.md).",
                               discussion: "Default: ORCASTRA_CONFIG, then ./orcastra.yaml when it exists.",
                               valueName: "file"))
    public var config: String?

    /// Resolves the connection string, starting the local development database when nothing is configured.
    public func conninfo(quiet: Bool = false) async throws -> String {
        if let databaseURL, !databaseURL.isEmpty {
            // The configuration layers pass a variable's or the file's value as the flag: name its origin.
            return try Self.checked(databaseURL, source: ConfiguredLaunch.origin(ofOption: "database-url") ?? "--database-url")
        }
        let environment = ProcessInfo.processInfo.environment
        for name in ["ORCASTRA_DATABASE_URL", "DATABASE_URL"] {
            if let value = environment[name], !value.isEmpty { return try Self.checked(value, source: name) }
        }
        // libpq reads PG* itself from an empty conninfo.
        if !Self.libpqVariablesSet(in: environment).isEmpty { return "" }
        let devDB = try DevDatabase.cluster()
        let wasRunning = try devDB.status() != nil
        let url = try await devDB.start()
        if !wasRunning && !quiet {
            FileHandle.standardError.write(Data("Started the local development PostgreSQL in \(devDB.dataDirectory.path) (stop it with `orcastra dev-db stop`).\n".utf8))
        }
        return url
    }
}

extension DatabaseOptions {
    /// libpq's own variables that, set without a database URL, make every command connect with them
    /// instead of starting the development database.
    public static func libpqVariablesSet(in environment: [String: String]) -> [String] {
        ["PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE"].filter { !(environment[$0] ?? "").isEmpty }
    }

    /// A connection string libpq cannot read is bad input, not an unreachable server.
    static func checked(_ conninfo: String, source: String) throws -> String {
        if let problem = ConnectionAddress.parseProblem(conninfo) {
            throw MalformedConnectionString(source: source, problem: problem)
        }
        return conninfo
    }
}

/// `--database-url` (or the variable that stood in for it) is not a connection string.
public struct MalformedConnectionString: Error, CustomStringConvertible {
    public var source: String
    public var problem: String
    public var description: String {
        "\(source) is not a PostgreSQL connection string (\(problem)). Write a URL like postgresql://user@db.example.com:5432/orders or key=value pairs like 'host=db.example.com dbname=orders'."
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
