import Foundation
import OrcastraInvariants
import OrcastraPostgres
import OrcastraTemplates
import OrcastraTesting
import Testing

/// `when:`, `skipped` and `trigger:` (issue 19) with real processes: an orchestrator and workers
/// run the tasks; the invariant checker (skipped-vs-triggers among its rules) runs after each.
extension EndToEndTests {
@Suite(.timeLimit(.minutes(5))) struct ConditionTests {
    /// Every trigger and both outcomes of `when`, in one task:
    ///   decide → yes (when true) · no (when false) → after_no (skipped: all_success) → deep (skipped)
    ///   nf (none_failed over yes, no: runs) · os (one_success over yes, no: runs)
    ///   os_none (one_success over no, after_no: skipped) · ad (all_done over no, yes: runs)
    ///   gate (root, when over the context: false, skipped at creation) → below_gate (skipped)
    static let conditions = """
        namespace: e2e
        name: conditions
        version: 1.0.0
        steps:
          - name: decide
            command: [sh, -c, "echo '{\\"go\\": true, \\"failed\\": 0}'"]
          - {name: yes, depends_on: [decide], when: "$.parents.decide.go == true", handler: orcastra.echo}
          - {name: no, depends_on: [decide], when: "$.parents.decide.failed > 0", handler: orcastra.noop}
          - {name: after_no, depends_on: [no], handler: orcastra.noop}
          - {name: deep, depends_on: [after_no], handler: orcastra.noop}
          - {name: nf, depends_on: [yes, no], trigger: none_failed, handler: orcastra.echo}
          - {name: os, depends_on: [yes, no], trigger: one_success, handler: orcastra.noop}
          - {name: os_none, depends_on: [no, after_no], trigger: one_success, handler: orcastra.noop}
          - {name: ad, depends_on: [no, yes], trigger: all_done, handler: orcastra.noop}
          - {name: gate, when: "$.context.open", handler: orcastra.noop}
          - {name: below_gate, depends_on: [gate], handler: orcastra.noop}
        """

    /// A failed parent: all_done and one_success children still run, none_failed and all_success
    /// children stay pending, and the task ends in error.
    static let failures = """
        namespace: e2e
        name: failures
        version: 1.0.0
        steps:
          - {name: boom, command: [sh, -c, "exit 3"], retry: {max_attempts: 1}}
          - {name: ok, handler: orcastra.noop}
          - {name: cleanup, depends_on: [boom, ok], trigger: all_done, handler: orcastra.noop}
          - {name: any, depends_on: [boom, ok], trigger: one_success, handler: orcastra.noop}
          - {name: careful, depends_on: [ok, boom], trigger: none_failed, handler: orcastra.noop}
          - {name: strict, depends_on: [ok, boom], handler: orcastra.noop}
        """

    static func checkInvariants(_ cluster: ProcessCluster) async throws {
        let connection = try await PostgresConnection.connect(cluster.url)
        let violations = try await InvariantChecker(settleGrace: .milliseconds(0)).check(on: connection)
        await connection.close()
        #expect(violations.isEmpty, "\(violations.map(\.description))")
    }

    @Test func whenSkipsAndTriggersDecide() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.conditions)
        try cluster.orchestrator()
        try cluster.worker(["--concurrency", "4"])
        let task = try await cluster.submit("e2e/conditions", context: ["open": false])
        #expect(try await cluster.settled(task) == "complete", "\(cluster.logs)")
        #expect(try await cluster.steps(task) == [
            "decide": "complete", "yes": "complete", "no": "skipped", "after_no": "skipped", "deep": "skipped",
            "nf": "complete", "os": "complete", "os_none": "skipped", "ad": "complete",
            "gate": "skipped", "below_gate": "skipped",
        ], "\(cluster.logs)")
        // A skipped parent's result is null in its children's input.
        guard case .object(let echo)? = try await cluster.result(task, step: "nf"), case .object(let parents)? = echo["parents"] else {
            Issue.record("nf has no echo result"); return
        }
        #expect(parents["no"] == .null)
        #expect(parents["yes"] != nil)
        // Why each was skipped is in its log.
        let reasons = try await cluster.pool.query("""
            SELECT s.name, t.reason FROM orcastra.step_transitions t JOIN orcastra.steps s ON s.id = t.step_id
            WHERE t.task_id = \(task) AND t.to_state = 'skipped'
            """).rows.reduce(into: [String: String]()) { $0[try $1.decode("name")] = try $1.decode("reason") }
        #expect(reasons["no"] == "skipped: when is not true")
        #expect(reasons["after_no"] == "skipped: a parent was skipped (trigger all_success)")
        #expect(reasons["os_none"] == "skipped: no parent succeeded (trigger one_success)")
        #expect(reasons["gate"] == "skipped: when is not true")
        // Skipped steps never ran and have no result.
        #expect(try await cluster.count("""
            SELECT count(*) FROM orcastra.step_transitions t JOIN orcastra.steps s ON s.id = t.step_id
            WHERE t.task_id = \(task) AND s.state = 'skipped' AND t.to_state IN ('enqueued', 'in_progress')
            """) == 0)
        #expect(try await cluster.count("""
            SELECT count(*) FROM orcastra.step_results r JOIN orcastra.steps s ON s.id = r.step_id
            WHERE s.task_id = \(task) AND s.state = 'skipped'
            """) == 0)

        // The other way: the gate open runs its branch.
        let open = try await cluster.submit("e2e/conditions", context: ["open": true])
        #expect(try await cluster.settled(open) == "complete", "\(cluster.logs)")
        let states = try await cluster.steps(open)
        #expect(states["gate"] == "complete" && states["below_gate"] == "complete", "\(states)")
        try await Self.checkInvariants(cluster)
    }

    @Test func triggersAfterAFailedParent() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.failures)
        try cluster.orchestrator()
        try cluster.worker(["--concurrency", "2"])
        let task = try await cluster.submit("e2e/failures")
        #expect(try await cluster.settled(task) == "error", "\(cluster.logs)")
        // The task settles to error only when nothing can run: cleanup and any have finished.
        #expect(try await cluster.steps(task) == [
            "boom": "error", "ok": "complete", "cleanup": "complete", "any": "complete",
            "careful": "pending", "strict": "pending",
        ], "\(cluster.logs)")
        try await Self.checkInvariants(cluster)
    }

    /// Many conditional tasks at once on two workers: half open their gate, half skip it; skips
    /// cascade while siblings complete concurrently. Every task completes with the states its
    /// context implies, no deadlock is reported, and the invariants hold.
    @Test func manyConditionalTasksOnTwoWorkers() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.conditions)
        try cluster.orchestrator()
        try cluster.worker(["--concurrency", "8"])
        try cluster.worker(["--concurrency", "8"])
        let deadlocksBefore = try await cluster.count("SELECT deadlocks::int FROM pg_stat_database WHERE datname = current_database()")
        var tasks: [(UUID, Bool)] = []
        for index in 0..<60 {
            let open = index.isMultiple(of: 2)
            tasks.append((try await cluster.submit("e2e/conditions", context: ["open": .bool(open)]), open))
        }
        for (task, open) in tasks {
            #expect(try await cluster.settled(task, within: .seconds(90)) == "complete", "\(cluster.logs)")
            let states = try await cluster.steps(task)
            #expect(states["gate"] == (open ? "complete" : "skipped") && states["below_gate"] == states["gate"], "\(states)")
            #expect(states["no"] == "skipped" && states["deep"] == "skipped" && states["ad"] == "complete", "\(states)")
        }
        #expect(try await cluster.count("SELECT deadlocks::int FROM pg_stat_database WHERE datname = current_database()") == deadlocksBefore)
        try await Self.checkInvariants(cluster)
    }

    /// A task whose only root is skipped at creation completes at once, with no worker running.
    @Test func aTaskOfSkippedStepsCompletesAtCreation() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register("""
            namespace: e2e
            name: nothing
            version: 1.0.0
            steps:
              - {name: only, when: "$.context.enabled", handler: orcastra.noop}
              - {name: after, depends_on: [only], handler: orcastra.noop}
            """)
        let task = try await cluster.submit("e2e/nothing", context: ["enabled": false])
        #expect(try await cluster.taskState(task) == "complete")
        #expect(try await cluster.steps(task) == ["only": "skipped", "after": "skipped"])
        try await Self.checkInvariants(cluster)
    }
}
}
