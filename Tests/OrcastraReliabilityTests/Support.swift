import Foundation
import OrcastraDevDB
import OrcastraInvariants
import OrcastraMigrations
import OrcastraPostgres
import OrcastraTesting
import Testing

/// Shared by the fault tests: clusters that are always shut down, the checker. (Waits: OrcastraTesting's `waitUntil`.)
enum Reliability {
    /// Runs `body` with a cluster of real processes and shuts it down (processes killed) afterwards,
    /// whether or not the body threw.
    static func withCluster<Value>(url: String? = nil, _ body: (ProcessCluster) async throws -> Value) async throws -> Value {
        let cluster = try await ProcessCluster(url: url)
        do {
            let value = try await body(cluster)
            await cluster.shutdown()
            return value
        } catch {
            await cluster.shutdown()
            throw error
        }
    }

    /// A count on a fresh connection each time, so a restarted server never leaves us a dead one.
    static func count(_ url: String, _ sql: SQL) async throws -> Int {
        let connection = try await PostgresConnection.connect(url)
        do {
            let value = try await connection.queryRow(sql).decode(at: 0, as: Int.self)
            await connection.close()
            return value
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Runs the invariant checker and records every violation as a test issue.
    static func expectInvariantsHold(_ url: String, logs: @autoclosure () -> String = "",
                                     sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let connection = try await PostgresConnection.connect(url)
        let violations: [InvariantViolation]
        do {
            violations = try await InvariantChecker().check(on: connection)
            await connection.close()
        } catch {
            await connection.close()
            throw error
        }
        #expect(violations.isEmpty, "\(violations.prefix(20).map(\.description).joined(separator: "\n"))\n\(violations.isEmpty ? "" : logs())",
                sourceLocation: sourceLocation)
    }

    /// A process's log split into entries: a line starting with a timestamp, plus its continuation
    /// lines (libpq's messages span several).
    static func logEntries(_ log: String) -> [String] {
        var entries: [String] = []
        for line in log.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.first?.isNumber == true || entries.isEmpty { entries.append(String(line)) } else { entries[entries.count - 1] += "\n" + line }
        }
        return entries
    }

    /// A task's step transitions, one line each, for failure messages.
    static func stepLog(_ cluster: ProcessCluster, task: UUID) async throws -> String {
        try await cluster.pool.query("""
            SELECT s.name, t.id, t.from_state, t.to_state, t.attempt, t.reason, t.created_at
            FROM orcastra.step_transitions t JOIN orcastra.steps s ON s.id = t.step_id
            WHERE t.task_id = \(task) ORDER BY t.id
            """).rows.map { row in
                ["name", "id", "from_state", "to_state", "attempt", "reason", "created_at"].map { row[$0] ?? "NULL" }.joined(separator: " ")
            }.joined(separator: "\n")
    }

    /// Whether a background process is still running.
    static func isAlive(_ process: BackgroundProcess) async -> Bool {
        await process.wait(timeout: .zero) == nil
    }
}

/// A PostgreSQL server of the test's own, which it may stop, kill and restart, migrated.
struct OwnServer {
    let cluster: LocalPostgres
    let url: String

    /// fsync is off (throwaway data); `synchronousCommit` decides whether a crash may lose the last
    /// fraction of a second of acknowledged commits.
    static func start(synchronousCommit: Bool = false) async throws -> OwnServer {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("orcastra-rel-\(UUID().uuidString.prefix(8))")
        let cluster = try LocalPostgres(dataDirectory: directory, options: .init(durable: false))
        let url = try await cluster.start()
        let connection = try await PostgresConnection.connect(url)
        do {
            try await Migrator.bundled().migrate(on: connection)
            if synchronousCommit {
                try await connection.executeSimple("ALTER SYSTEM SET synchronous_commit = on")
                _ = try await connection.query("SELECT pg_reload_conf()")
            }
            await connection.close()
        } catch {
            await connection.close()
            OwnServer(cluster: cluster, url: url).destroy()
            throw error
        }
        return OwnServer(cluster: cluster, url: url)
    }

    /// Stops the server at once and deletes its files. Blocking, so a `defer` can call it and the
    /// server never outlives the test.
    func destroy() {
        try? cluster.killBlocking()
        try? FileManager.default.removeItem(at: cluster.dataDirectory)
    }
}
