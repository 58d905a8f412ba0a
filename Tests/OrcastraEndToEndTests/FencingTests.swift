import Foundation
import OrcastraPostgres
import OrcastraTemplates
import OrcastraTesting
import Testing

/// A worker that cannot renew a lease stops that step before the lease runs out, so no attempt
/// outlives its lease and the step never runs twice at once (issue 11, defect 5).
extension EndToEndTests {
@Suite(.serialized, .timeLimit(.minutes(5))) struct FencingTests {
    @Test func aStepWhoseLeaseCannotBeRenewedIsStoppedBeforeItRunsElsewhere() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        let pids = NSTemporaryDirectory() + "orcastra-fenced-\(UUID().uuidString).pids"
        defer { unlink(pids) }
        try await cluster.register("""
            namespace: e2e
            name: fenced
            version: 1.0.0
            steps:
              - name: work
                retry: {max_attempts: 3, backoff: none}
                command: [sh, -c, "if [ $ORCASTRA_ATTEMPT -ge 2 ]; then echo '{}'; else \(recordingPIDs(in: pids, sleep: 60)); fi"]
            """)
        try cluster.orchestrator()
        try cluster.worker(namespace: "e2e", ["--lease", "2s"])
        let task = try await cluster.submit("e2e/fenced")
        #expect(await waitUntil(within: .seconds(10)) { recordedPIDs(in: pids).count == 2 }, "\(cluster.logs)")
        let step: Int64 = try await cluster.stepRow(task, step: "work").decode("id")

        // Hold the step's row lock: the worker's heartbeats wait, so its lease cannot be renewed.
        let blocker = try await PostgresConnection.connect(cluster.url)
        try await blocker.execute("BEGIN")
        try await blocker.execute("SELECT 1 FROM orcastra.steps WHERE id = \(step) FOR UPDATE")
        let locked = ContinuousClock.now
        for pid in recordedPIDs(in: pids) {
            #expect(await waitUntil(within: .seconds(3)) { processIsGone(pid) }, "attempt 1 still runs: \(cluster.logs)")
        }
        #expect(ContinuousClock.now - locked < .seconds(3))
        // Nobody else could have started the step meanwhile: attempt 1 is still the only one.
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.step_transitions WHERE step_id = \(step) AND to_state = 'in_progress'") == 1)
        try await blocker.execute("COMMIT")
        await blocker.close()

        // Its lease runs out, an orchestrator records the lost attempt, attempt 2 completes.
        #expect(try await cluster.settled(task, within: .seconds(20)) == "complete", "\(cluster.logs)")
        #expect(try await cluster.stepRow(task, step: "work").decode("attempts", as: Int.self) == 2)
        #expect(cluster.logs.contains("stopped a step whose lease could not be renewed"))
    }
}
}
