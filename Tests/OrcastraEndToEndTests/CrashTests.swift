import Foundation
import OrcastraPostgres
import OrcastraTemplates
import OrcastraTesting
import Testing

/// kill -9 of workers and orchestrators, and many of each at once.
extension EndToEndTests {
@Suite struct CrashTests {
    @Test func killedWorkersStepRunsAgainElsewhere() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register("""
            namespace: e2e
            name: crash
            version: 1.0.0
            steps:
              - {name: work, command: [sh, -c, "sleep 1; echo '{\\"done\\": true}'"]}
            """)
        try cluster.orchestrator()
        let doomed = try cluster.worker(["--lease", "2s"])
        let task = try await cluster.submit("e2e/crash")
        for _ in 0..<1000 where try await cluster.steps(task)["work"] != "in_progress" {
            try await Task.sleep(for: .milliseconds(10))
        }
        try #require(try await cluster.steps(task)["work"] == "in_progress", "the step never started: \(cluster.logs)")
        doomed.send(SIGKILL)
        _ = await doomed.wait(timeout: .seconds(5))
        try cluster.worker(["--lease", "2s"])
        #expect(try await cluster.settled(task, within: .seconds(30)) == "complete", "\(cluster.logs)")
        let step = try await cluster.stepRow(task, step: "work")
        #expect(try step.decode("attempts", as: Int.self) == 2)
        #expect(try await cluster.count("""
            SELECT count(*) FROM orcastra.step_transitions WHERE task_id = \(task) AND reason LIKE 'lease expired: attempt 1 lost%'
            """) == 1)
    }

    @Test func killedOrchestratorIsReplacedByAnother() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(EndToEndTests.FailureTests.template)
        let first = try cluster.orchestrator()
        try cluster.orchestrator()
        try cluster.worker()
        first.send(SIGKILL)
        _ = await first.wait(timeout: .seconds(5))
        // Retries need an orchestrator: the survivor enqueues them.
        let task = try await cluster.submit("e2e/failures")
        #expect(try await cluster.settled(task) == "complete", "\(cluster.logs)")
    }

    @Test func threeOrchestratorsThreeWorkersFiveHundredTasks() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(EndToEndTests.WorkflowTests.linear)
        for _ in 0..<3 { try cluster.orchestrator() }
        for _ in 0..<3 { try cluster.worker(["--concurrency", "8"]) }
        var tasks: [UUID] = []
        for _ in 0..<500 { tasks.append(try await cluster.submit("e2e/linear")) }
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline,
              try await cluster.count("SELECT count(*) FROM orcastra.tasks WHERE state <> 'complete'") > 0 {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.tasks WHERE state = 'complete'") == 500, "\(cluster.logs)")
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.steps WHERE state = 'complete' AND attempts = 1") == 2000)
        // No step was claimed twice: one in_progress transition per step.
        #expect(try await cluster.count("""
            SELECT count(*) FROM (SELECT step_id FROM orcastra.step_transitions WHERE to_state = 'in_progress'
                                  GROUP BY step_id HAVING count(*) > 1) AS twice
            """) == 0)
        // And the three workers shared the work.
        #expect(try await cluster.count("SELECT count(DISTINCT lease_owner) FROM orcastra.steps") == 3)
    }
}
}
