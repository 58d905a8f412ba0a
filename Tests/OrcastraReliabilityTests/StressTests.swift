import Foundation
import OrcastraPostgres
import OrcastraTemplates
import OrcastraTesting
import Testing

/// Normal operation under pressure must never deadlock and never apply an attempt twice:
/// several workers with short leases (600 ms), a fan-in template whose steps fail one time in three, and
/// an orchestrator killed and started again midway (issue 11, defect 3). Runs in CI.
@Suite(.serialized, .timeLimit(.minutes(5))) struct StressTests {
    /// Four parents that each fail one attempt in three, and a join that waits for all of them.
    static let fanIn = """
        namespace: stress
        name: fanin
        version: 1.0.0
        defaults:
          retry: {max_attempts: 20, backoff: fixed, initial_delay: 20ms, jitter: false}
        steps:
          - {name: p1, command: [sh, -c, "\(flaky)"]}
          - {name: p2, command: [sh, -c, "\(flaky)"]}
          - {name: p3, command: [sh, -c, "\(flaky)"]}
          - {name: p4, handler: orcastra.noop}
          - {name: join, handler: orcastra.noop, depends_on: [p1, p2, p3, p4]}
        """
    /// Exits 1 one time in three (dash has no $RANDOM), prints a result otherwise.
    static let flaky = "[ $(( $(od -An -N1 -tu1 /dev/urandom) % 3 )) -ne 0 ] && echo '{}' || exit 1"

    static func deadlocks(_ cluster: ProcessCluster) async throws -> Int {
        try await cluster.count("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
    }

    @Test func flakyFanInWithShortLeasesAndARestartedOrchestratorNeverDeadlocks() async throws {
        try await Reliability.withCluster { cluster in
            try await cluster.register(Self.fanIn)
            let total = 300
            for _ in 0..<total { _ = try await cluster.submit("stress/fanin") }
            // Wait for the server's statistics to settle before reading the baseline.
            try await Task.sleep(for: .milliseconds(600))
            let before = try await Self.deadlocks(cluster)

            let first = try cluster.orchestrator(["--poll-interval", "100ms"])
            for _ in 0..<3 { try cluster.worker(namespace: "stress", ["--concurrency", "24", "--lease", "600ms"]) }
            #expect(await waitUntil(within: .seconds(60)) {
                try await cluster.count("SELECT count(*) FROM orcastra.tasks WHERE state = 'complete'") >= total / 3
            }, "\(cluster.logs)")
            first.send(SIGKILL)
            #expect(await first.wait(timeout: .seconds(5)) == 128 + SIGKILL)
            try await Task.sleep(for: .milliseconds(500))
            try cluster.orchestrator(["--poll-interval", "100ms"])

            #expect(await waitUntil(within: .seconds(120), every: .milliseconds(200)) {
                try await cluster.count("SELECT count(*) FROM orcastra.tasks WHERE state = 'complete'") == total
            }, "\(cluster.logs)")
            #expect(try await cluster.count("SELECT count(*) FROM orcastra.tasks WHERE state <> 'complete'") == 0)
            // Retries really happened, so the failure paths were exercised under contention.
            #expect(try await cluster.count("SELECT count(*) FROM orcastra.step_transitions WHERE to_state = 'waiting_for_retry'") > 50)
            // No attempt's outcome was applied twice.
            #expect(try await cluster.count("""
                SELECT count(*) FROM (
                    SELECT step_id, attempt FROM orcastra.step_transitions WHERE from_state = 'in_progress'
                    GROUP BY step_id, attempt HAVING count(*) > 1) AS twice
                """) == 0)
            try await Task.sleep(for: .milliseconds(1_500))   // statistics are flushed about once a second
            #expect(try await Self.deadlocks(cluster) == before, "\(cluster.logs)")
            try await Reliability.expectInvariantsHold(cluster.url, logs: cluster.logs)
        }
    }
}
