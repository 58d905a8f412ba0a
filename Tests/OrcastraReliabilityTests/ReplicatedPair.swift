import Foundation
import OrcastraDevDB
import OrcastraMigrations
import OrcastraPostgres
import OrcastraTesting

/// A primary and a hot standby streaming from it, on this machine, for failover tests: both
/// migrated (the standby by replication), and a multi-host URL naming both with
/// `target_session_attrs=read-write`, as a production deployment would.
struct ReplicatedPair {
    let folder: URL
    let primary: LocalPostgres
    let standby: LocalPostgres
    let primaryURL: String
    let standbyURL: String
    /// Both servers, primary first; libpq connects to whichever takes writes.
    let multiHostURL: String

    /// With `synchronous`, every commit waits until the standby has applied it
    /// (`synchronous_commit = remote_apply`); otherwise the standby trails by whatever was not sent yet.
    static func start(synchronous: Bool) async throws -> ReplicatedPair {
        // A short path: the servers' sockets live in their data folders.
        let folder = URL(fileURLWithPath: "/tmp/orcastra-fo-\(UUID().uuidString.prefix(8).lowercased())")
        // fsync off (throwaway data; a server killed with `immediate` loses nothing the OS holds).
        let primary = try LocalPostgres(dataDirectory: folder.appendingPathComponent("a"),
                                        options: .init(durable: false, maxConnections: 100, settings: ["full_page_writes = on", "wal_level = replica"]))
        do {
            let primaryURL = try await primary.start()
            let admin = try await PostgresConnection.connect(primaryURL)
            do {
                try await Migrator.bundled().migrate(on: admin)
                await admin.close()
            } catch {
                await admin.close()
                throw error
            }
            let standby = try await onDedicatedThread { try primary.startStandby(in: folder.appendingPathComponent("b")) }
            guard let a = try primary.status(), let b = try standby.status() else {
                throw LocalPostgresError.failed(step: "start a replicated pair", output: "a server stopped")
            }
            let pair = ReplicatedPair(folder: folder, primary: primary, standby: standby, primaryURL: a.url, standbyURL: b.url,
                                      multiHostURL: Self.multiHost([a, b]))
            // Set after the copy, so a promoted standby does not wait for a standby of its own.
            if synchronous {
                try await pair.onPrimary { connection in
                    try await connection.executeSimple("ALTER SYSTEM SET synchronous_standby_names = '*'")
                    try await connection.executeSimple("ALTER SYSTEM SET synchronous_commit = 'remote_apply'")
                    _ = try await connection.query("SELECT pg_reload_conf()")
                }
            }
            let expected = synchronous ? "sync" : "async"
            let streaming = await waitUntil(within: .seconds(30), every: .milliseconds(50)) {
                try await pair.onPrimary { connection in
                    try await connection.query("SELECT 1 FROM pg_stat_replication WHERE state = 'streaming' AND sync_state = \(expected)").count == 1
                }
            }
            guard streaming else {
                throw LocalPostgresError.failed(step: "start streaming replication (\(expected))", output: "the standby never streamed; see \(folder.path)/b/server.log")
            }
            return pair
        } catch {
            try? primary.killBlocking()
            try? FileManager.default.removeItem(at: folder)
            throw error
        }
    }

    /// postgresql://postgres@/postgres?host=A,B&port=PA,PB&target_session_attrs=read-write
    static func multiHost(_ servers: [LocalPostgres.Running]) -> String {
        let hosts = servers.map { $0.socketDirectory.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0.socketDirectory }
        return "postgresql://postgres@/postgres?host=\(hosts.joined(separator: ","))&port=\(servers.map { String($0.port) }.joined(separator: ","))&target_session_attrs=read-write&connect_timeout=3"
    }

    /// Runs `body` on a fresh connection to the (old) primary.
    func onPrimary<Value: Sendable>(_ body: (PostgresConnection) async throws -> Value) async throws -> Value {
        try await Self.on(primaryURL, body)
    }

    /// Runs `body` on a fresh connection to the standby (the new primary once promoted).
    func onStandby<Value: Sendable>(_ body: (PostgresConnection) async throws -> Value) async throws -> Value {
        try await Self.on(standbyURL, body)
    }

    static func on<Value: Sendable>(_ url: String, _ body: (PostgresConnection) async throws -> Value) async throws -> Value {
        let connection = try await PostgresConnection.connect(url)
        do {
            let value = try await body(connection)
            await connection.close()
            return value
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Stops both servers at once and deletes their files; blocking, for a `defer`.
    func destroy() {
        try? standby.killBlocking()
        try? primary.killBlocking()
        try? FileManager.default.removeItem(at: folder)
    }
}
