import Foundation
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

/// One lock order everywhere — steps by ascending id, then tasks by ascending id — so that two
/// callers released at the same moment never deadlock (issue 11, defect 3). Each test holds the
/// rows from a third connection, lets both callers queue behind it, then releases them together:
/// callers that lock in different orders then deadlock (SQLSTATE 40P01) within deadlock_timeout.
@Suite(.timeLimit(.minutes(3))) struct LockOrderTests {
    static let fan = """
        namespace: locks
        name: fan
        version: 1.0.0
        steps:
          - {name: a, handler: locks.a}
          - {name: b, handler: locks.b}
          - {name: join, handler: locks.join, depends_on: [a, b]}
        """

    /// Runs `first` and `second` on connections of their own while `rows` are locked elsewhere,
    /// releases the lock once both wait, and returns the errors they ended with.
    static func race(_ url: String, holding rows: SQL, _ first: SQL, _ second: SQL) async throws -> [String] {
        let holder = try await PostgresConnection.connect(url)
        let a = try await PostgresConnection.connect(url)
        let b = try await PostgresConnection.connect(url)
        defer { Task { await holder.close(); await a.close(); await b.close() } }
        try await holder.execute("BEGIN")
        _ = try await holder.query(rows)
        async let one: String? = { do { _ = try await a.query(first); return nil } catch { return "\(error)" } }()
        async let two: String? = { do { _ = try await b.query(second); return nil } catch { return "\(error)" } }()
        // Both are queued behind the holder once pg_locks shows two waiters.
        _ = await waitUntil(within: .seconds(5)) {
            try await holder.queryRow("SELECT count(*) AS n FROM pg_locks WHERE NOT granted").decode("n", as: Int.self) >= 2
        }
        try await holder.execute("COMMIT")
        return [await one, await two].compactMap { $0 }
    }

    @Test func heartbeatsListingTheSameStepsInOtherOrdersDoNotDeadlock() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.fan)
        _ = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "locks/fan")))
        let claimed = try await WorkerProtocolTests.claim(fixture, namespace: "locks")
        #expect(claimed.count == 2)
        let ids = claimed.map(\.id), tokens = claimed.map(\.token)
        let url = fixture.pool.conninfo
        for _ in 0..<3 {
            let errors = try await Self.race(url,
                holding: "SELECT 1 FROM orcastra.steps WHERE id = ANY (\(ids)) FOR UPDATE",
                "SELECT * FROM orcastra.heartbeat_steps(\(ids), \(tokens), 30000)",
                "SELECT * FROM orcastra.heartbeat_steps(\(Array(ids.reversed())), \(Array(tokens.reversed())), 30000)")
            #expect(errors.isEmpty, "\(errors)")
        }
    }

    @Test func startingADueTaskAndCancellingItDoNotDeadlock() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.fan)
        let url = fixture.pool.conninfo
        for _ in 0..<5 {
            let task = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "locks/fan"),
                                                                    runAt: Date().addingTimeInterval(0.05))).taskID
            try await Task.sleep(for: .milliseconds(60))
            let errors = try await Self.race(url,
                holding: "SELECT 1 FROM orcastra.steps WHERE task_id = \(task) FOR UPDATE",
                "SELECT orcastra.start_due_tasks(100)",
                "SELECT orcastra.cancel_task(\(task), 'operator')")
            #expect(errors.isEmpty, "\(errors)")
            #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks WHERE id = \(task) AND state IN ('cancelled', 'in_progress')") == 1)
        }
    }

    @Test func aReportAndAHeartbeatOfTheSameStepsDoNotDeadlock() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.fan)
        let url = fixture.pool.conninfo
        for _ in 0..<3 {
            _ = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "locks/fan")))
            let claimed = try await WorkerProtocolTests.claim(fixture, namespace: "locks")
            let ids = claimed.map(\.id), tokens = claimed.map(\.token)
            // One succeeds, one fails: both kinds of outcome in one call, as a worker reports them.
            let errors = try await Self.race(url,
                holding: "SELECT 1 FROM orcastra.steps WHERE id = ANY (\(ids)) FOR UPDATE",
                "SELECT * FROM orcastra.report_steps(\(ids), \(tokens), ARRAY['{}', NULL]::jsonb[], ARRAY[NULL, 'x']::text[], ARRAY[NULL, 10]::bigint[])",
                "SELECT * FROM orcastra.heartbeat_steps(\(Array(ids.reversed())), \(Array(tokens.reversed())), 30000)")
            #expect(errors.isEmpty, "\(errors)")
        }
    }
}
