import Foundation
import OrcastraInvariants
import OrcastraPostgres
import OrcastraTemplates
import OrcastraTesting
import Testing

/// `workflow:` steps (issue 19) with real processes — an orchestrator (which moves a workflow step
/// after its child: advance_subworkflows), workers and the `orcastra` CLI; the invariant checker
/// (workflow-step-follows-child among its rules) runs after each.
extension EndToEndTests {
@Suite(.timeLimit(.minutes(5))) struct SubWorkflowTests {
    static let child = """
        namespace: e2e
        name: child
        version: 1.0.0
        steps:
          - name: double
            command: [python3, -c, "import json,sys; d=json.load(sys.stdin); print(json.dumps({'double': 2 * d['context']['parents']['first']['n']}))"]
          - name: check
            depends_on: [double]
            command: [python3, -c, "import json,sys; d=json.load(sys.stdin); n=d['parents']['double']['double']; sys.exit(3) if n < 0 else print(json.dumps({'ok': n}))"]
            retry: {max_attempts: 1}
        """
    static let parent = """
        namespace: e2e
        name: parent
        version: 1.0.0
        steps:
          - name: first
            command: [python3, -c, "import json,sys; print(json.dumps({'n': json.load(sys.stdin)['context']['n']}))"]
          - name: sub
            depends_on: [first]
            workflow: e2e/child@1.0.0
          - name: last
            depends_on: [sub]
            command: [python3, -c, "import json,sys; print(json.dumps({'saw': json.load(sys.stdin)['parents']['sub']}))"]
        """
    static let slowChild = """
        namespace: e2e
        name: slow
        version: 1.0.0
        steps:
          - {name: wait, command: [sleep, "60"]}
        """
    static let slowParent = """
        namespace: e2e
        name: waits
        version: 1.0.0
        steps:
          - {name: sub, workflow: e2e/slow, timeout: 10m}
        """

    static func cluster(_ templates: [String]) async throws -> ProcessCluster {
        let cluster = try await ProcessCluster()
        for yaml in templates { try await cluster.register(yaml) }
        try cluster.orchestrator()
        try cluster.worker(["--concurrency", "4"])
        return cluster
    }

    static func child(of task: UUID, _ cluster: ProcessCluster) async throws -> UUID {
        try await cluster.pool.query("SELECT child_task_id FROM orcastra.steps WHERE task_id = \(task) AND workflow IS NOT NULL").first!
            .decode("child_task_id")
    }

    @Test func aSubWorkflowThatSucceedsGivesItsLeafResultsAndIsShownBothWays() async throws {
        let cluster = try await Self.cluster([Self.child, Self.parent])
        defer { Task { await cluster.shutdown() } }
        let task = try await cluster.submit("e2e/parent", context: ["n": 21])
        #expect(try await cluster.settled(task, within: .seconds(60)) == "complete", "\(cluster.logs)")
        #expect(try await cluster.result(task, step: "sub") == ["check": ["ok": 42]])
        #expect(try await cluster.result(task, step: "last") == ["saw": ["check": ["ok": 42]]])
        let child = try await Self.child(of: task, cluster)
        #expect(try await cluster.taskState(child) == "complete")

        let orcastra = CommandLineTool("orcastra")
        let environment = ["ORCASTRA_DATABASE_URL": cluster.url]
        let parentShown = try await orcastra.run(["task", "show", task.uuidString.lowercased()], environment: environment)
        #expect(parentShown.status == 0, "\(parentShown.output)")
        #expect(parentShown.standardOutput.contains("Sub-workflows"), "\(parentShown.output)")
        #expect(parentShown.standardOutput.contains("e2e/child@1.0.0  task \(child.uuidString.lowercased())"), "\(parentShown.output)")
        let childShown = try await orcastra.run(["task", "show", child.uuidString.lowercased(), "--json"], environment: environment)
        let detail = try JSONSerialization.jsonObject(with: Data(childShown.standardOutput.utf8)) as? [String: Any]
        #expect(detail?["parent_task_id"] as? String == task.uuidString.lowercased(), "\(childShown.output)")
        #expect(detail?["parent_step_name"] as? String == "sub")
        let events = try await orcastra.run(["task", "events", task.uuidString.lowercased(), "--json"], environment: environment)
        #expect(events.standardOutput.contains("sub-workflow task \(child.uuidString.lowercased())"), "\(events.output)")
        #expect(events.standardOutput.contains("\"child_task\""), "\(events.output)")
        try await ConditionTests.checkInvariants(cluster)
    }

    @Test func aSubWorkflowThatFailsFailsItsStepNamingTheChild() async throws {
        let cluster = try await Self.cluster([Self.child, Self.parent])
        defer { Task { await cluster.shutdown() } }
        let task = try await cluster.submit("e2e/parent", context: ["n": -1])
        #expect(try await cluster.settled(task, within: .seconds(60)) == "error", "\(cluster.logs)")
        let child = try await Self.child(of: task, cluster)
        #expect(try await cluster.taskState(child) == "error")
        let sub = try await cluster.stepRow(task, step: "sub")
        #expect(try sub.decode("state", as: String.self) == "error")
        let error: String = try sub.decode("last_error")
        #expect(error.hasPrefix("sub-workflow task \(child.uuidString.lowercased()) (e2e/child@1.0.0) failed: check: "), "\(error)")
        #expect(try await cluster.steps(task)["last"] == "pending")
        try await ConditionTests.checkInvariants(cluster)
    }

    @Test func cancellingTheParentMidChildCancelsTheChildAndStopsItsCommand() async throws {
        let cluster = try await Self.cluster([Self.slowChild, Self.slowParent])
        defer { Task { await cluster.shutdown() } }
        let task = try await cluster.submit("e2e/waits")
        let child = try await Self.child(of: task, cluster)
        #expect(await waitUntil(within: .seconds(30)) { try await cluster.steps(child)["wait"] == "in_progress" }, "\(cluster.logs)")
        let cancelled = try await CommandLineTool("orcastra").run(["task", "cancel", task.uuidString.lowercased(), "--reason", "not needed"],
                                                                   environment: ["ORCASTRA_DATABASE_URL": cluster.url])
        #expect(cancelled.status == 0, "\(cancelled.output)")
        #expect(try await cluster.taskState(task) == "cancelled")
        #expect(try await cluster.taskState(child) == "cancelled")
        #expect(try await cluster.steps(task)["sub"] == "cancelled")
        // The worker learns of it at its next heartbeat and stops the command.
        #expect(await waitUntil(within: .seconds(90)) { try await cluster.steps(child)["wait"] == "cancelled" }, "\(cluster.logs)")
        try await ConditionTests.checkInvariants(cluster)
    }

    /// Twelve templates, each calling the next: the eleventh task would nest 11 deep, past the
    /// limit of 10, so its step fails, and the failure climbs back to the root.
    @Test func aChainDeeperThanTheLimitFailsWithTheLimitNamed() async throws {
        let levels = 12
        let templates = (0..<levels).reversed().map { level in
            """
            namespace: e2e
            name: level\(level)
            version: 1.0.0
            steps:
              - {name: s, \(level == levels - 1 ? "command: [\"true\"]" : "workflow: e2e/level\(level + 1)")}
            """
        }
        let cluster = try await Self.cluster(templates)
        defer { Task { await cluster.shutdown() } }
        let task = try await cluster.submit("e2e/level0")
        #expect(try await cluster.settled(task, within: .seconds(60)) == "error", "\(cluster.logs)")
        #expect(try await cluster.count("SELECT max(workflow_depth)::int FROM orcastra.tasks") == 10)
        let deepest: String = try await cluster.pool.query("""
            SELECT s.last_error FROM orcastra.steps s JOIN orcastra.tasks t ON t.id = s.task_id WHERE t.workflow_depth = 10
            """).first!.decode("last_error")
        #expect(deepest == "sub-workflow e2e/level11 not started: it would nest 11 levels deep, and tasks nest at most 10 (setting orcastra.workflow_depth_limit); a chain of workflow: steps that calls itself never ends")
        let rootError: String = try await cluster.pool.query("SELECT error FROM orcastra.tasks WHERE id = \(task)").first!.decode("error")
        #expect(rootError.contains("tasks nest at most 10"), "\(rootError)")
        try await ConditionTests.checkInvariants(cluster)
    }

    /// The workflow step's `timeout` is its child's deadline: the orchestrator fails the child when
    /// it passes (its running command cancelled), the step fails with it, and the step's
    /// `trigger: all_done` child still runs.
    @Test func aStepTimeoutFailsTheChildAndTheStepAndAnAllDoneChildRuns() async throws {
        let parent = """
            namespace: e2e
            name: hurried
            version: 1.0.0
            steps:
              - {name: sub, workflow: e2e/slow, timeout: 2s}
              - {name: after, depends_on: [sub], trigger: all_done, command: ["true"]}
            """
        let cluster = try await Self.cluster([Self.slowChild, parent])
        defer { Task { await cluster.shutdown() } }
        let task = try await cluster.submit("e2e/hurried")
        #expect(try await cluster.settled(task, within: .seconds(60)) == "error", "\(cluster.logs)")
        let child = try await Self.child(of: task, cluster)
        #expect(try await cluster.taskState(child) == "error")
        let childError: String = try await cluster.pool.query("SELECT error FROM orcastra.tasks WHERE id = \(child)").first!.decode("error")
        #expect(childError.hasPrefix("timed out after 2s"), "\(childError)")
        let sub = try await cluster.stepRow(task, step: "sub")
        let error: String = try sub.decode("last_error")
        #expect(error.hasPrefix("sub-workflow task \(child.uuidString.lowercased()) (e2e/slow) failed: timed out after 2s"), "\(error)")
        #expect(try await cluster.steps(task) == ["sub": "error", "after": "complete"])
        #expect(try await cluster.steps(child)["wait"] == "cancelled")
        try await ConditionTests.checkInvariants(cluster)
    }
}
}
