import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import OrcastraPostgres
import OrcastraTesting
import Testing

/// `/metrics` of a real orchestrator (`--http-address`) and a real worker (`--metrics-address`)
/// after tasks that succeed, retry, fail, time out, and a worker killed with SIGKILL: the numbers
/// agree with what the database holds.
@Suite(.timeLimit(.minutes(5))) struct MetricsTests {
    static let templates = [
        """
        namespace: obs
        name: ok
        version: 1.0.0
        steps:
          - {name: greet, handler: orcastra.noop}
          - {name: echo, handler: orcastra.echo, depends_on: [greet]}
        """,
        // Fails on attempts 1 and 2, succeeds on 3.
        """
        namespace: obs
        name: flaky
        version: 1.0.0
        defaults:
          retry: {max_attempts: 3, backoff: fixed, initial_delay: 100ms, jitter: false}
        steps:
          - name: flaky
            command: [sh, -c, "[ \\"$ORCASTRA_ATTEMPT\\" -ge 3 ] && echo '{}' || { echo 'not yet' >&2; exit 1; }"]
        """,
        // Fails twice: once retryable, then for good.
        """
        namespace: obs
        name: doomed
        version: 1.0.0
        defaults:
          retry: {max_attempts: 2, backoff: fixed, initial_delay: 100ms, jitter: false}
        steps:
          - {name: fail, command: [sh, -c, "echo broken >&2; exit 1"]}
        """,
        // A Swift handler and a command, each stopped by its timeout.
        """
        namespace: obs
        name: slow
        version: 1.0.0
        steps:
          - {name: nap, handler: orcastra.sleep, timeout: 200ms, retry: {max_attempts: 1}}
          - {name: snooze, command: [sleep, "10"], timeout: 200ms, retry: {max_attempts: 1}}
        """,
        // Run by a worker that is killed: its lease is recovered, and nobody is left to run it.
        """
        namespace: victim
        name: stuck
        version: 1.0.0
        steps:
          - {name: hang, command: [sleep, "30"], retry: {max_attempts: 3}}
        """,
    ]

    @Test func metricsOfTheOrchestratorAndAWorkerAgreeWithTheDatabase() async throws {
        let fixture = try await APIFixture()
        defer { Task { await fixture.shutdown() } }
        let cluster = fixture.cluster
        for template in Self.templates { try await cluster.register(template) }
        let metricsPort = try APIFixture.freePort()
        let worker = try cluster.worker(namespace: "obs", ["--metrics-address", "127.0.0.1:\(metricsPort)"])
        let victim = try cluster.worker(namespace: "victim", ["--lease", "1s"])

        var tasks: [String: UUID] = [:]
        tasks["ok"] = try await cluster.submit("obs/ok")
        tasks["ok2"] = try await cluster.submit("obs/ok")
        tasks["flaky"] = try await cluster.submit("obs/flaky")
        tasks["doomed"] = try await cluster.submit("obs/doomed")
        tasks["slow"] = try await cluster.submit("obs/slow", context: ["sleep_ms": 10_000])
        let stuck = try await cluster.submit("victim/stuck")
        for (name, task) in tasks {
            let state = try await cluster.settled(task)
            #expect(state == (["ok", "ok2", "flaky"].contains(name) ? "complete" : "error"), "\(name): \(cluster.logs)")
        }
        // The victim holds its step; kill it and let the orchestrator recover the lease.
        #expect(await waitUntil(within: .seconds(20)) { try await cluster.steps(stuck)["hang"] == "in_progress" }, "\(cluster.logs)")
        victim.send(SIGKILL)
        _ = await victim.wait(timeout: .seconds(5))
        #expect(await waitUntil(within: .seconds(20)) { try await cluster.steps(stuck)["hang"] == "enqueued" }, "\(cluster.logs)")
        // Its last beat long ago, as far as anyone can tell (staleness takes 30 s otherwise).
        try await cluster.pool.query("UPDATE orcastra.workers SET last_seen_at = now() - interval '5 minutes' WHERE namespace = 'victim'")

        // The worker: every attempt it ran, by what the database recorded of namespace obs.
        func transitions(to state: String, from: String? = nil) async throws -> Double {
            Double(try await cluster.count("""
                SELECT count(*) FROM orcastra.step_transitions t JOIN orcastra.steps s ON s.id = t.step_id
                WHERE s.namespace = 'obs' AND t.to_state = \(state) AND (\(from)::text IS NULL OR t.from_state = \(from))
                """))
        }
        let attempts = Double(try await cluster.count("SELECT coalesce(sum(attempts), 0)::bigint FROM orcastra.steps WHERE namespace = 'obs'"))
        #expect(attempts == 2 * 2 + 3 + 2 + 2)
        // A report's metrics are counted when its answer arrives, a moment after its commit.
        let completed = try await transitions(to: "complete")
        var workerText = ""
        #expect(await waitUntil(within: .seconds(10), every: .milliseconds(100)) {
            workerText = try await scrape("http://127.0.0.1:\(metricsPort)/metrics")
            let metrics = Exposition(workerText)
            return metrics.sum("orcastra_step_run_seconds_count") == attempts && metrics.sum("orcastra_steps_completed_total") == completed
        }, "\(workerText)")
        let workerMetrics = Exposition(workerText)
        #expect(workerMetrics.sum("orcastra_steps_claimed_total") == attempts, "\(workerText)")
        #expect(workerMetrics.sum("orcastra_steps_claimed_total") == (try await transitions(to: "in_progress")))
        #expect(workerMetrics.sum("orcastra_step_run_seconds_count") == attempts, "\(workerText)")
        #expect(workerMetrics.sum("orcastra_step_queue_wait_seconds_count") == attempts, "\(workerText)")
        #expect(workerMetrics.sum("orcastra_steps_completed_total") == (try await transitions(to: "complete")))
        #expect(workerMetrics.sum("orcastra_steps_failed_total", ["retryable": "true"])
                == (try await transitions(to: "waiting_for_retry")))
        #expect(workerMetrics.sum("orcastra_steps_failed_total", ["retryable": "false"]) == (try await transitions(to: "error")))
        #expect(workerMetrics.sum("orcastra_steps_timed_out_total") == 2, "\(workerText)")
        #expect(workerMetrics.sum("orcastra_steps_timed_out_total", ["handler": "orcastra.sleep"]) == 1)
        #expect(workerMetrics.sum("orcastra_steps_timed_out_total", ["handler": "command"]) == 1)
        // By handler: the noop steps ran once per ok task, the command steps 3 + 2 + 1 times.
        #expect(workerMetrics.sum("orcastra_steps_claimed_total", ["namespace": "obs", "handler": "orcastra.noop"]) == 2)
        #expect(workerMetrics.sum("orcastra_steps_claimed_total", ["handler": "command"]) == 6)
        #expect(workerMetrics.sum("orcastra_step_run_seconds_count", ["handler": "command"]) == 6)
        // Tasks by template and final state, as the database has them.
        for row in try await cluster.pool.query("""
            SELECT tp.name AS template, t.state, count(*)::float8 AS n FROM orcastra.tasks t JOIN orcastra.templates tp ON tp.id = t.template_id
            WHERE tp.namespace = 'obs' GROUP BY tp.name, t.state
            """) {
            let template: String = try row.decode("template"), state: String = try row.decode("state"), n: Double = try row.decode("n")
            #expect(workerMetrics.sum("orcastra_tasks_finished_total", ["template": template, "state": state]) == n, "\(template) \(state)")
            #expect(workerMetrics.sum("orcastra_task_duration_seconds_count", ["template": template]) > 0)
        }
        // A run-time histogram is cumulative and its +Inf bucket is its count.
        #expect(workerMetrics.sum("orcastra_step_run_seconds_bucket", ["le": "+Inf"]) == attempts)
        #expect(workerMetrics.sum("orcastra_step_run_seconds_sum", ["handler": "orcastra.sleep"]) >= 0.2)
        Self.expectHelpOnEveryMetric(workerMetrics)

        // The orchestrator: chores and the queue, by the database.
        let recovered = Double(try await cluster.count("""
            SELECT count(*) FROM orcastra.step_transitions WHERE from_state = 'in_progress' AND to_state = 'enqueued'
            """))
        let retriesDue = Double(try await cluster.count("""
            SELECT count(*) FROM orcastra.step_transitions WHERE from_state = 'waiting_for_retry' AND to_state = 'enqueued'
            """))
        #expect(recovered == 1)
        var orchestratorText = ""
        // The queue gauges are at most a second old: wait for a refresh that shows the recovery.
        let agreed = await waitUntil(within: .seconds(10), every: .milliseconds(250)) {
            orchestratorText = try await scrape("\(fixture.base)/metrics")
            let metrics = Exposition(orchestratorText)
            return metrics.sum("orcastra_queue_steps", ["namespace": "victim", "state": "enqueued"]) == 1
                && metrics.sum("orcastra_workers_live", ["namespace": "victim"]) == 0
                && metrics.has("orcastra_workers_live", ["namespace": "victim"])
        }
        #expect(agreed, "\(orchestratorText)\n\(cluster.logs)")
        let orchestrator = Exposition(orchestratorText)
        #expect(orchestrator.sum("orcastra_chore_rows_total", ["chore": "recover_expired_leases"]) == recovered, "\(orchestratorText)")
        #expect(orchestrator.sum("orcastra_chore_rows_total", ["chore": "enqueue_due_retries"]) == retriesDue, "\(orchestratorText)")
        #expect(orchestrator.sum("orcastra_chore_seconds_count", ["chore": "recover_expired_leases"]) >= 1)
        #expect(orchestrator.sum("orcastra_workers_live", ["namespace": "obs"]) == 1, "\(orchestratorText)")
        #expect(orchestrator.sum("orcastra_queue_oldest_enqueued_seconds", ["namespace": "victim"]) > 0)
        for state in ["enqueued", "in_progress", "waiting_for_retry"] {
            let inDatabase = Double(try await cluster.count("SELECT count(*) FROM orcastra.steps WHERE namespace = 'victim' AND state = \(state)"))
            #expect(orchestrator.sum("orcastra_queue_steps", ["namespace": "victim", "state": state]) == inDatabase, "\(state)")
        }
        #expect(orchestrator.has("orcastra_pool_connections", ["pool": "http", "state": "in_use"]), "\(orchestratorText)")
        Self.expectHelpOnEveryMetric(orchestrator)
        _ = worker
    }

    /// Every metric family has HELP text and a TYPE.
    static func expectHelpOnEveryMetric(_ exposition: Exposition) {
        #expect(!exposition.types.isEmpty)
        for (name, _) in exposition.types where name.hasPrefix("orcastra_") {
            #expect(!(exposition.help[name] ?? "").isEmpty, "\(name) has no HELP")
        }
    }

    func scrape(_ url: String) async throws -> String {
        var request = URLRequest(url: URL(string: url)!)
        request.timeoutInterval = 10
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        #expect(http.statusCode == 200)
        #expect((http.value(forHTTPHeaderField: "Content-Type") ?? "").hasPrefix("text/plain; version=0.0.4"))
        return String(decoding: data, as: UTF8.self)
    }
}
