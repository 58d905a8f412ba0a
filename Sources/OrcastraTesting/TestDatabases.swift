import CLibPQ
import Foundation
import OrcastraDevDB
import OrcastraMigrations
import OrcastraPostgres
import Synchronization

/// Gives each test suite its own migrated database, cheaply.
///
/// The server is the one `DATABASE_URL` names, or else a throwaway local cluster started once per
/// test process (fsync off) and destroyed when the process exits. The schema is migrated once into
/// a template database; each suite then gets `CREATE DATABASE … TEMPLATE`, which copies files instead
/// of replaying migrations.
public actor TestDatabases {
    public static let shared = TestDatabases()

    private var server: Task<String, any Error>?
    private var template: Task<String, any Error>?
    private var counter = 0
    private let processTag = "\(getpid())_\(UInt32.random(in: 0..<UInt32.max))"

    /// The local cluster, if this process started one (for tests that restart the server).
    public private(set) var localCluster: LocalPostgres?

    /// A conninfo for the server itself (database `postgres` or the one `DATABASE_URL` names).
    public func serverConninfo() async throws -> String {
        // One start for every caller, even those that arrive while it runs.
        if let server { return try await server.value }
        let task = Task { try await startServer() }
        server = task
        return try await task.value
    }

    private func startServer() async throws -> String {
        let url: String
        if let configured = ProcessInfo.processInfo.environment["DATABASE_URL"], !configured.isEmpty {
            url = configured
        } else {
            let directory = URL(fileURLWithPath: NSTemporaryDirectory())
                .appendingPathComponent("orcastra-test-\(processTag)")
            let cluster = try LocalPostgres(dataDirectory: directory, options: .init(durable: false, maxConnections: 300))
            CleanupAtExit.register(cluster: cluster)
            url = try await cluster.start()
            localCluster = cluster
        }
        return url
    }

    /// A new, empty, fully migrated database; returns its conninfo.
    public func makeDatabase() async throws -> String {
        let server = try await serverConninfo()
        let template = try await migratedTemplate(server: server)
        counter += 1
        let name = "orcastra_test_\(processTag)_\(counter)"
        let admin = try await PostgresConnection.connect(server)
        defer { Task { await admin.close() } }
        try await admin.execute("CREATE DATABASE \(unescaped: name) TEMPLATE \(unescaped: template)")
        CleanupAtExit.register(database: name, server: server)
        return ConnectionAddress.replacingDatabase(in: server, with: name)
    }

    /// `url` (a conninfo in `key='value'` form, as `makeDatabase` returns) connecting as login role
    /// `role` instead: a later keyword wins. The throwaway server trusts local connections, so a
    /// role made with `CREATE ROLE … LOGIN` needs no password.
    public static func conninfo(_ url: String, as role: String) -> String {
        url + " user='\(role.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'"))'"
    }

    /// Drops login role `role` when the process exits, after the databases (roles are cluster-wide:
    /// on a server `DATABASE_URL` names they would otherwise stay). `server`: any conninfo of it.
    public static func dropAtExit(role: String, server: String) {
        CleanupAtExit.register(role: role, server: server)
    }

    /// A new empty database with no migrations applied (for migration tests).
    public func makeEmptyDatabase() async throws -> String {
        let server = try await serverConninfo()
        counter += 1
        let name = "orcastra_test_\(processTag)_\(counter)"
        let admin = try await PostgresConnection.connect(server)
        defer { Task { await admin.close() } }
        try await admin.execute("CREATE DATABASE \(unescaped: name)")
        CleanupAtExit.register(database: name, server: server)
        return ConnectionAddress.replacingDatabase(in: server, with: name)
    }

    private func migratedTemplate(server: String) async throws -> String {
        if let template { return try await template.value }
        let task = Task { try await createTemplate(server: server) }
        template = task
        return try await task.value
    }

    private func createTemplate(server: String) async throws -> String {
        let name = "orcastra_test_\(processTag)_template"
        let admin = try await PostgresConnection.connect(server)
        try await admin.execute("CREATE DATABASE \(unescaped: name)")
        await admin.close()
        CleanupAtExit.register(database: name, server: server)
        let connection = try await PostgresConnection.connect(ConnectionAddress.replacingDatabase(in: server, with: name))
        try await Migrator.bundled().migrate(on: connection)
        await connection.close()
        return name
    }
}

/// Drops what the tests made when the process exits: databases on a configured server, or the
/// whole throwaway cluster.
enum CleanupAtExit {
    private struct State {
        var registered = false
        var databases: [(name: String, server: String)] = []
        var roles: [(name: String, server: String)] = []
        var cluster: LocalPostgres?
    }

    private static let state = Mutex(State())

    static func register(database: String, server: String) {
        state.withLock { $0.databases.append((database, server)) }
        installHook()
    }

    static func register(role: String, server: String) {
        state.withLock { $0.roles.append((role, server)) }
        installHook()
    }

    static func register(cluster: LocalPostgres) {
        state.withLock { $0.cluster = cluster }
        installHook()
    }

    private static func installHook() {
        let install = state.withLock { state in
            defer { state.registered = true }
            return !state.registered
        }
        if install { atexit { CleanupAtExit.run() } }
    }

    static func run() {
        let (databases, roles, cluster) = state.withLock { ($0.databases, $0.roles, $0.cluster) }
        if let cluster {
            try? cluster.killBlocking()
            try? FileManager.default.removeItem(at: cluster.dataDirectory)
            return
        }
        // A plain blocking libpq call is right here: the process is exiting.
        for (name, server) in databases.reversed() {
            guard let connection = PQconnectdb(server) else { continue }
            if PQstatus(connection) == CONNECTION_OK, let result = PQexec(connection, "DROP DATABASE IF EXISTS \"\(name)\" WITH (FORCE)") {
                PQclear(result)
            }
            PQfinish(connection)
        }
        // Roles last: a role still granted something in a database that remains cannot be dropped,
        // which leaves it behind rather than failing.
        for (name, server) in roles {
            guard let connection = PQconnectdb(server) else { continue }
            if PQstatus(connection) == CONNECTION_OK,
               let result = PQexec(connection, "DROP ROLE IF EXISTS \"\(name.replacingOccurrences(of: "\"", with: "\"\""))\"") {
                PQclear(result)
            }
            PQfinish(connection)
        }
    }
}
