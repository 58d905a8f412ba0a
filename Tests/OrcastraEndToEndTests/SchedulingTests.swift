import Foundation
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

/// When steps run: priority, scheduled starts, idempotent submission, retry backoff, and the
/// orchestrator's own shutdown, with real processes.
extension EndToEndTests {
@Suite(.timeLimit(.minutes(5))) struct SchedulingTests {
    static let single = """
        namespace: e2e
        name: single
        version: 1.0.0
        steps:
          - {name: work, handler: orcastra.noop}
        """

    func submit(_ cluster: ProcessCluster, priority: Int = 0, runAt: Date? = nil, key: String? = nil) async throws -> UUID {
        try await cluster.creator.create(TaskRequest(template: TemplateReference(parsing: "e2e/single"), idempotencyKey: key,
                                                     priority: priority, runAt: runAt)).taskID
    }

    @Test func higherPriorityStepsAreClaimedFirst() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.single)
        // No worker yet: everything waits in line. Low priority first, so FIFO order would be wrong.
        var low: Set<UUID> = []
        var high: Set<UUID> = []
        for _ in 0..<5 { low.insert(try await submit(cluster, priority: 0)) }
        for _ in 0..<5 { high.insert(try await submit(cluster, priority: 10)) }
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.steps WHERE state = 'enqueued'") == 10)
        // One worker claiming one step at a time: the claim order is the queue order.
        try cluster.worker(["--concurrency", "1"])
        let done = await waitUntil(within: .seconds(30)) {
            try await cluster.count("SELECT count(*) FROM orcastra.tasks WHERE state = 'complete'") == 10
        }
        #expect(done, "\(cluster.logs)")
        let order = try await cluster.pool.query("""
            SELECT task_id FROM orcastra.step_transitions WHERE to_state = 'in_progress' ORDER BY id
            """).rows.map { try $0.decode("task_id", as: UUID.self) }
        #expect(order.count == 10)
        #expect(Set(order.prefix(5)) == high, "claimed in this order: \(order.map { high.contains($0) ? "high" : "low" })")
        #expect(Set(order.suffix(5)) == low)
    }

    @Test func scheduledTaskStartsWhenDueAndNotBefore() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.single)
        try cluster.orchestrator()
        try cluster.worker()
        let runAt = Date().addingTimeInterval(1.5)
        let task = try await submit(cluster, runAt: runAt)
        // Until shortly before it is due, nothing of it runs.
        while Date() < runAt.addingTimeInterval(-0.2) {
            #expect(try await cluster.taskState(task) == "pending")
            #expect(try await cluster.steps(task) == ["work": "pending"])
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try await cluster.settled(task, within: .seconds(20)) == "complete", "\(cluster.logs)")
        // Its step was claimed once, at or after run_at (both times from the database).
        #expect(try await cluster.count("""
            SELECT count(*) FROM orcastra.step_transitions WHERE task_id = \(task) AND to_state = 'in_progress'
            """) == 1)
        let times = try await cluster.pool.query("""
            SELECT k.run_at::text AS run_at, t.created_at::text AS claimed_at
            FROM orcastra.step_transitions t JOIN orcastra.tasks k ON k.id = t.task_id
            WHERE t.task_id = \(task) AND t.to_state = 'in_progress'
            """).rows.map { "due \($0["run_at"] ?? "?"), claimed \($0["claimed_at"] ?? "?")" }
        #expect(try await cluster.count("""
            SELECT count(*) FROM orcastra.step_transitions t JOIN orcastra.tasks k ON k.id = t.task_id
            WHERE t.task_id = \(task) AND t.to_state = 'in_progress' AND t.created_at < k.run_at
            """) == 0, "claimed before it was due: \(times)")
        // And not absurdly late: the orchestrator polls every 200 ms.
        #expect(try await cluster.count("""
            SELECT count(*) FROM orcastra.step_transitions t JOIN orcastra.tasks k ON k.id = t.task_id
            WHERE t.task_id = \(task) AND t.to_state = 'in_progress' AND t.created_at < k.run_at + interval '3 seconds'
            """) == 1)
    }

    @Test func concurrentSubmissionsWithOneIdempotencyKeyMakeOneTask() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.single)
        // Twenty clients, each on a connection of its own, all at once.
        let creators = (0..<20).map { _ in TaskCreator(pool: PostgresPool(conninfo: cluster.url, maximumConnections: 1)) }
        defer { Task { for creator in creators { await creator.pool.shutdown() } } }
        // Warm every connection first, so the submissions themselves overlap.
        for creator in creators { _ = try await creator.pool.query("SELECT 1") }
        let request = TaskRequest(template: try TemplateReference(parsing: "e2e/single"), idempotencyKey: "same-key")
        let creations = try await withThrowingTaskGroup(of: TaskCreation.self) { group in
            for creator in creators { group.addTask { try await creator.create(request) } }
            return try await group.reduce(into: [TaskCreation]()) { $0.append($1) }
        }
        #expect(creations.count == 20)
        #expect(Set(creations.map(\.taskID)).count == 1, "\(Set(creations.map(\.taskID)))")
        #expect(creations.filter(\.created).count == 1)
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.tasks") == 1)
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.steps") == 1)
    }

    /// The gaps between each failed attempt and its retry being enqueued, in milliseconds.
    func retryGaps(_ cluster: ProcessCluster, task: UUID) async throws -> [Int] {
        try await cluster.pool.query("""
            SELECT (extract(epoch FROM (e.created_at - w.created_at)) * 1000)::bigint AS gap_ms
            FROM orcastra.step_transitions w
            JOIN LATERAL (SELECT created_at FROM orcastra.step_transitions e
                          WHERE e.step_id = w.step_id AND e.id > w.id AND e.to_state = 'enqueued' AND e.reason = 'retry due'
                          ORDER BY e.id LIMIT 1) e ON true
            WHERE w.task_id = \(task) AND w.to_state = 'waiting_for_retry'
            ORDER BY w.id
            """).rows.map { try $0.decode("gap_ms", as: Int.self) }
    }

    /// The failing transition is stamped with clock_timestamp() a little after its transaction
    /// began, while the retry's due time is computed from the transaction's start: allow that much.
    /// 25 ms was once too little with the machine loaded (a gap of 374 ms for a 400 ms backoff);
    /// 150 ms still tells a 400 ms backoff from none and from an 800 ms one.
    static let stampSlack = 150

    @Test(arguments: [("fixed", [400, 400]), ("exponential", [400, 800])])
    func backoffDelaysAreApplied(backoff: String, delays: [Int]) async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register("""
            namespace: e2e
            name: backoff
            version: 1.0.0
            steps:
              - name: fails
                command: [sh, -c, "echo 'always fails' >&2; exit 1"]
                retry: {max_attempts: 3, backoff: \(backoff), initial_delay: 400ms, max_delay: 10s, jitter: false}
            """)
        try cluster.orchestrator()
        try cluster.worker()
        let task = try await cluster.submit("e2e/backoff")
        #expect(try await cluster.settled(task, within: .seconds(30)) == "error", "\(cluster.logs)")
        #expect(try await cluster.stepRow(task, step: "fails").decode("attempts", as: Int.self) == 3)
        let gaps = try await retryGaps(cluster, task: task)
        #expect(gaps.count == delays.count, "\(gaps)")
        for (gap, delay) in zip(gaps, delays) {
            #expect(gap >= delay - Self.stampSlack, "\(backoff): retried \(gap) ms after the failure, before its \(delay) ms backoff: \(gaps)")
            #expect(gap < delay + 2_100, "\(backoff): retried \(gap) ms after the failure, far after its \(delay) ms backoff: \(gaps)")
        }
    }

    /// Issue 12's idle target: a poll with nothing due is one statement (`next_due()`), not a round
    /// of every chore (ten statements), so an idle orchestrator's database sees about one
    /// transaction per poll. Yet a task scheduled while it idles still starts on time.
    @Test func anIdleOrchestratorSendsOneStatementAPollAndStillStartsWhatFallsDue() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.single)
        try cluster.orchestrator(["--poll-interval", "100ms"])
        try await Task.sleep(for: .seconds(2))   // its first round, the pruner's and the partitioner's
        let commits: SQL = "SELECT xact_commit::int8 AS n FROM pg_stat_database WHERE datname = current_database()"
        let before = try await cluster.count(commits)
        try await Task.sleep(for: .seconds(4))
        let during = try await cluster.count(commits) - before
        // 40 polls: about 40 commits (statistics are flushed about once a second, so a second's
        // worth either way, and this test's own two); a round per poll would be about 400.
        #expect(during < 120, "\(during) transactions in 4 s of polling every 100 ms")
        // Idle, it still starts a task whose time comes (next_due() says so on a poll).
        try cluster.worker()
        let task = try await submit(cluster, runAt: Date().addingTimeInterval(1))
        #expect(try await cluster.settled(task, within: .seconds(10)) == "complete", "\(cluster.logs)")
    }

    @Test func orchestratorStopsPromptlyOnSIGTERMWhileAWorkerKeepsRunning() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.single)
        let orchestrator = try cluster.orchestrator()
        let worker = try cluster.worker()
        #expect(await waitUntil(within: .seconds(10)) { orchestrator.log.contains("orchestrator started") }, "\(cluster.logs)")
        let signalled = ContinuousClock.now
        orchestrator.send(SIGTERM)
        let status = await orchestrator.wait(timeout: .seconds(5))
        #expect(status == 0, "exit status \(String(describing: status)) after \(ContinuousClock.now - signalled): \(orchestrator.log.suffix(2000))")
        #expect(ContinuousClock.now - signalled < .seconds(5))
        #expect(orchestrator.log.contains("orchestrator stopped"), "\(orchestrator.log.suffix(2000))")
        // The worker did not go down with it, and still runs work that needs no orchestrator.
        #expect(await worker.wait(timeout: .zero) == nil, "\(worker.log.suffix(2000))")
        let task = try await cluster.submit("e2e/single")
        #expect(try await cluster.settled(task, within: .seconds(10)) == "complete", "\(cluster.logs)")
    }
}
}
