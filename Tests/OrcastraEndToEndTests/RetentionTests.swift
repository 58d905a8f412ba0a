import Foundation
import OrcastraClient
import OrcastraInvariants
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

/// Retention (issue 20): orchestrators delete finished tasks whose retention ran out, with
/// everything they own, and nothing else — from several orchestrators at once.
extension EndToEndTests {
@Suite(.timeLimit(.minutes(5))) struct RetentionTests {
    static func template(_ name: String, namespace: String = "e2e", retention: String? = nil) -> String {
        """
        namespace: \(namespace)
        name: \(name)
        version: 1.0.0
        \(retention.map { "retention: \($0)" } ?? "")
        steps:
          - {name: first, handler: orcastra.noop}
          - {name: second, handler: orcastra.noop, depends_on: [first]}
        """
    }

    /// Every row a task owns, by table.
    func owned(_ cluster: ProcessCluster, _ tasks: [UUID]) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        counts["tasks"] = try await cluster.count("SELECT count(*) FROM orcastra.tasks WHERE id = ANY (\(tasks.map(\.uuidString))::uuid[])")
        counts["steps"] = try await cluster.count("SELECT count(*) FROM orcastra.steps WHERE task_id = ANY (\(tasks.map(\.uuidString))::uuid[])")
        counts["task_transitions"] = try await cluster.count(
            "SELECT count(*) FROM orcastra.task_transitions WHERE task_id = ANY (\(tasks.map(\.uuidString))::uuid[])")
        counts["step_transitions"] = try await cluster.count(
            "SELECT count(*) FROM orcastra.step_transitions WHERE task_id = ANY (\(tasks.map(\.uuidString))::uuid[])")
        return counts
    }

    func finishedAgo(_ cluster: ProcessCluster, _ tasks: [UUID], days: Int) async throws {
        _ = try await cluster.pool.query("""
            UPDATE orcastra.tasks SET finished_at = now() - \(days) * interval '1 day' WHERE id = ANY (\(tasks.map(\.uuidString))::uuid[])
            """)
    }

    @Test func expiredTasksAreDeletedWithAllTheyOwnAndNothingElse() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.template("plain"))
        try await cluster.register(Self.template("short", retention: "{complete: 1d}"))
        try await cluster.register(Self.template("kept", retention: "{complete: forever}"))
        try await cluster.register(Self.template("idle", namespace: "e2e_idle"))
        try cluster.worker()
        var plain: [UUID] = [], short: [UUID] = [], kept: [UUID] = []
        for _ in 0..<6 { plain.append(try await cluster.submit("e2e/plain")) }
        for _ in 0..<3 { short.append(try await cluster.submit("e2e/short")) }
        for _ in 0..<3 { kept.append(try await cluster.submit("e2e/kept")) }
        for task in plain + short + kept {
            #expect(try await cluster.settled(task, within: .seconds(30)) == "complete", "\(cluster.logs)")
        }
        // No worker serves e2e_idle: one task stays live (its first step enqueued), one is cancelled.
        let live = try await cluster.submit("e2e_idle/idle")
        let cancelled = try await cluster.submit("e2e_idle/idle")
        _ = try await cluster.pool.query("SELECT orcastra.cancel_task(\(cancelled), 'test')")
        // Created 60 days ago: its history moves to that week's partition with it.
        _ = try await cluster.pool.query("UPDATE orcastra.tasks SET created_at = now() - interval '60 days' WHERE id = \(live)")
        for table in ["task_transitions", "step_transitions"] {
            _ = try await cluster.pool.query(SQL(unsafeRaw: "UPDATE orcastra.\(table) SET task_created_at = (SELECT created_at FROM orcastra.tasks WHERE id = '\(live.uuidString)') WHERE task_id = '\(live.uuidString)'"))
        }

        // Expired: complete 8 days ago (default 7d), complete 2 days ago with the template's 1d,
        // cancelled 8 days ago (default 7d). Kept: complete 6 days ago (default), 100 days ago with
        // `forever`, and the live task.
        let expired = Array(plain.prefix(3)) + short + [cancelled]
        let unexpired = Array(plain.suffix(3)) + kept + [live]
        try await finishedAgo(cluster, Array(plain.prefix(3)) + [cancelled], days: 8)
        try await finishedAgo(cluster, short, days: 2)
        try await finishedAgo(cluster, Array(plain.suffix(3)), days: 6)
        try await finishedAgo(cluster, kept, days: 100)
        let before = try await owned(cluster, unexpired)
        let expiredHistory = try await owned(cluster, expired)
        #expect(expiredHistory["steps"] == expired.count * 2)

        try cluster.orchestrator(["--poll-interval", "200ms", "--prune-interval", "200ms"])
        let gone = await waitUntil(within: .seconds(30)) {
            try await cluster.count("SELECT count(*) FROM orcastra.tasks WHERE id = ANY (\(expired.map(\.uuidString))::uuid[])") == 0
        }
        #expect(gone, "\(cluster.logs)")
        // Their history stays in this week's partitions (tasks of this week are left), read by
        // nobody: every reader looks history up through its task or step.
        #expect(try await owned(cluster, expired) == ["tasks": 0, "steps": 0, "task_transitions": expiredHistory["task_transitions"]!,
                                                      "step_transitions": expiredHistory["step_transitions"]!])
        await #expect(throws: StoreError.self) { _ = try await OrcastraClient(pool: cluster.pool).events(expired[0]) }
        #expect(try await OrcastraClient(pool: cluster.pool).events(live).count == 3)
        // Nothing else: the unexpired tasks keep every row, and no step, edge or result is left without its owner.
        #expect(try await owned(cluster, unexpired) == before)
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.tasks") == unexpired.count)
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.step_results r JOIN orcastra.steps s ON s.id = r.step_id") ==
                (plain.count - 3 + kept.count) * 2)
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.step_edges") == unexpired.count)
        #expect(try await cluster.taskState(live) == "in_progress")
        #expect(try await cluster.steps(live) == ["first": "enqueued", "second": "pending"])

        let connection = try await PostgresConnection.connect(cluster.url)
        let violations = try await InvariantChecker().check(on: connection)
        await connection.close()
        #expect(violations.isEmpty, "\(violations.map(\.description))")
    }

    /// Finished two-step tasks written directly (as `orcastra-bench` loads history): `count` of
    /// them finished `days` ago.
    static func loadFinished(_ cluster: ProcessCluster, template: String, count: Int, days: Int) async throws {
        _ = try await cluster.pool.query("""
            WITH t AS (
                INSERT INTO orcastra.tasks (template_id, state, state_reason, context, created_at, started_at, finished_at)
                SELECT (SELECT id FROM orcastra.templates WHERE name = \(template)), 'complete', 'loaded', '{}'::jsonb,
                       now() - \(days) * interval '1 day', now() - \(days) * interval '1 day', now() - \(days) * interval '1 day'
                FROM generate_series(1, \(count))
                RETURNING id, finished_at, created_at
            ), s AS (
                INSERT INTO orcastra.steps (task_id, name, namespace, state, state_reason, max_attempts, attempts, pending_parents, finished_at)
                SELECT t.id, n.name, 'e2e', 'complete', 'loaded', 1, 1, 0, t.finished_at FROM t CROSS JOIN (VALUES ('first'), ('second')) AS n(name)
                RETURNING id, task_id, name
            ), r AS (
                INSERT INTO orcastra.step_results (step_id, result) SELECT s.id, '{"ok": true}'::jsonb FROM s
            ), st AS (
                INSERT INTO orcastra.step_transitions (step_id, task_id, from_state, to_state, attempt, reason, task_created_at)
                SELECT s.id, s.task_id, 'in_progress', 'complete', 1, 'loaded', t.created_at FROM s JOIN t ON t.id = s.task_id
            ), tt AS (
                INSERT INTO orcastra.task_transitions (task_id, from_state, to_state, reason, task_created_at)
                SELECT t.id, 'in_progress', 'complete', 'loaded', t.created_at FROM t
            )
            INSERT INTO orcastra.step_edges (parent_id, child_id)
            SELECT a.id, b.id FROM s a JOIN s b ON b.task_id = a.task_id AND b.name = 'second' WHERE a.name = 'first'
            """)
    }

    /// The orchestrator makes the history's partitions ahead at start, even with pruning off: the
    /// weeks after this one, dropped here (they are empty), are back without anyone asking.
    @Test func orchestratorMakesHistoryPartitionsAheadAtStart() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        let ahead: SQL = "SELECT count(*) FROM orcastra.history_partitions WHERE week > orcastra.history_week(now())"
        #expect(try await cluster.count(ahead) == 8)
        for row in try await cluster.pool.query("SELECT table_name FROM orcastra.history_partitions WHERE week > orcastra.history_week(now())") {
            _ = try await cluster.pool.query(SQL(unsafeRaw: "DROP TABLE orcastra.\(try row.decode("table_name", as: String.self))"))
        }
        #expect(try await cluster.count(ahead) == 0)
        try cluster.orchestrator(["--poll-interval", "200ms", "--prune-interval", "off"])
        let made = await waitUntil(within: .seconds(30)) { try await cluster.count(ahead) == 8 }
        #expect(made, "\(cluster.logs)")
        // The log line comes after the commit that made them: wait for it too.
        let said = await waitUntil(within: .seconds(10)) { cluster.logs.contains("history partitions maintained") }
        #expect(said, "\(cluster.logs)")
    }

    /// `--history-weeks-ahead` (or ORCASTRA_HISTORY_WEEKS_AHEAD, or the file) sets how many.
    @Test func historyWeeksAheadIsTheOrchestratorsSetting() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        let ahead: SQL = "SELECT count(*) FROM orcastra.history_partitions WHERE week > orcastra.history_week(now())"
        try cluster.orchestrator(["--poll-interval", "200ms", "--prune-interval", "off", "--history-weeks-ahead", "6"])
        // Two tables, six weeks each.
        let made = await waitUntil(within: .seconds(30)) { try await cluster.count(ahead) == 12 }
        #expect(made, "\(cluster.logs)")
    }

    @Test func twoOrchestratorsShareABacklogWithoutErrors() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.template("plain"))
        try await Self.loadFinished(cluster, template: "plain", count: 4000, days: 10)
        try await Self.loadFinished(cluster, template: "plain", count: 300, days: 1)
        // Small batches (about 25 tasks each), so both orchestrators take many at the same time.
        let arguments = ["--poll-interval", "200ms", "--prune-interval", "100ms", "--prune-batch-rows", "250"]
        try cluster.orchestrator(arguments)
        try cluster.orchestrator(arguments)
        let done = await waitUntil(within: .seconds(120)) {
            try await cluster.count("SELECT count(*) FROM orcastra.tasks") == 300
        }
        #expect(done, "\(cluster.logs)")
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.tasks WHERE finished_at < now() - interval '2 days'") == 0)
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.steps") == 600)
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.step_results") == 600)
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.step_edges") == 300)
        // The pruned tasks' history went whole with their week's partitions (created ten days ago:
        // no task of that week is left), dropped by the orchestrators after their rounds. Each
        // table's partition goes in a step of its own: one busy (the other orchestrator pruning)
        // waits for the next round while the other is gone already.
        let historyGone = await waitUntil(within: .seconds(30)) {
            let steps = try await cluster.count("SELECT count(*) FROM orcastra.step_transitions")
            let tasks = try await cluster.count("SELECT count(*) FROM orcastra.task_transitions")
            return steps == 600 && tasks == 300
        }
        #expect(historyGone, "\(cluster.logs)")
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.task_transitions") == 300)
        // The drop commits before its log line is written: wait for the line, do not race it.
        let logged = await waitUntil(within: .seconds(10)) { cluster.logs.contains("dropped history partitions no task is left in") }
        #expect(logged, "\(cluster.logs)")
        // Neither waited on the other into an error (a deadlock, a lock timeout, a failed batch).
        #expect(!cluster.logs.contains("pruning expired tasks failed"), "\(cluster.logs)")
        #expect(cluster.logs.contains("deleted finished tasks whose retention ran out"))
    }
}
}
