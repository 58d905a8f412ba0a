import Foundation
import OrcastraPostgres
import OrcastraTemplates
import OrcastraTesting
import Testing

/// Retries, exhausted retries, operator repair, timeouts and cancellation, with real processes.
extension EndToEndTests {
@Suite(.timeLimit(.minutes(5))) struct FailureTests {
    static let template = """
        namespace: e2e
        name: failures
        version: 1.0.0
        defaults:
          retry: {max_attempts: 3, backoff: fixed, initial_delay: 100ms, jitter: false}
        steps:
          # Fails on attempts 1 and 2, succeeds on 3.
          - name: flaky
            command: [sh, -c, "[ \\"$ORCASTRA_ATTEMPT\\" -ge 3 ] && echo '{\\"attempt\\": '$ORCASTRA_ATTEMPT'}' || { echo 'not yet' >&2; exit 1; }"]
          - name: after_flaky
            depends_on: [flaky]
            handler: orcastra.noop
        """

    static let broken = """
        namespace: e2e
        name: broken
        version: 1.0.0
        defaults:
          retry: {max_attempts: 2, backoff: fixed, initial_delay: 100ms, jitter: false}
        steps:
          # Succeeds only once the file named by the context exists.
          - name: fragile
            command: [sh, -c, "test -f \\"$MARKER\\" && echo '{\\"fixed\\": true}' || { echo \\"no marker\\" >&2; exit 3; }"]
          - name: child
            depends_on: [fragile]
            handler: orcastra.echo
          - name: grandchild
            depends_on: [child]
            handler: orcastra.noop
          - name: independent
            handler: orcastra.noop
        """

    @Test func stepThatFailsTwiceThenSucceeds() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.template)
        try cluster.orchestrator()
        try cluster.worker()
        let task = try await cluster.submit("e2e/failures")
        #expect(try await cluster.settled(task) == "complete", "\(cluster.logs)")
        #expect(try await cluster.result(task, step: "flaky") == ["attempt": 3])
        let log = try await cluster.pool.query("""
            SELECT t.to_state FROM orcastra.step_transitions t JOIN orcastra.steps s ON s.id = t.step_id
            WHERE s.task_id = \(task) AND s.name = 'flaky' ORDER BY t.id
            """).rows.map { try $0.decode("to_state", as: String.self) }
        #expect(log == ["enqueued", "in_progress", "waiting_for_retry", "enqueued", "in_progress", "waiting_for_retry", "enqueued", "in_progress", "complete"])
    }

    @Test func exhaustedRetriesFailTheTaskButNotItsIndependentBranch() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.broken.replacingOccurrences(of: "$MARKER", with: "/nonexistent/marker"))
        try cluster.orchestrator()
        try cluster.worker(["--concurrency", "4"])
        let task = try await cluster.submit("e2e/broken")
        #expect(try await cluster.settled(task) == "error", "\(cluster.logs)")
        #expect(try await cluster.steps(task) == ["fragile": "error", "child": "pending", "grandchild": "pending", "independent": "complete"])
        let fragile = try await cluster.stepRow(task, step: "fragile")
        #expect(try fragile.decode("attempts", as: Int.self) == 2)
        #expect(try fragile.decode("last_error", as: String.self).contains("no marker"))
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.step_transitions t JOIN orcastra.steps s ON s.id = t.step_id WHERE s.task_id = \(task) AND s.name IN ('child', 'grandchild') AND t.to_state = 'in_progress'") == 0)
        let error = try await cluster.pool.query("SELECT error FROM orcastra.tasks WHERE id = \(task)").first!.decode("error", as: String.self)
        #expect(error.contains("fragile"))
    }

    @Test func operatorRetryResumesTheTask() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        let marker = NSTemporaryDirectory() + "orcastra-marker-\(UUID().uuidString)"
        try await cluster.register(Self.broken.replacingOccurrences(of: "$MARKER", with: marker))
        try cluster.orchestrator()
        try cluster.worker(["--concurrency", "4"])
        let task = try await cluster.submit("e2e/broken")
        #expect(try await cluster.settled(task) == "error", "\(cluster.logs)")
        // Fix the cause, then retry the failed step.
        #expect(FileManager.default.createFile(atPath: marker, contents: Data()))
        defer { unlink(marker) }
        let stepID: Int64 = try await cluster.stepRow(task, step: "fragile").decode("id")
        _ = try await cluster.pool.query("SELECT orcastra.retry_step(\(stepID), 'operator retry')")
        #expect(try await cluster.settled(task) == "complete", "\(cluster.logs)")
        #expect(try await cluster.steps(task).values.allSatisfy { $0 == "complete" })
        #expect(try await cluster.stepRow(task, step: "fragile").decode("attempts", as: Int.self) == 3)
    }

    @Test func manualResolutionRunsTheChildrenWithTheSuppliedResult() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.broken.replacingOccurrences(of: "$MARKER", with: "/nonexistent/marker"))
        try cluster.orchestrator()
        try cluster.worker(["--concurrency", "4"])
        let task = try await cluster.submit("e2e/broken")
        #expect(try await cluster.settled(task) == "error", "\(cluster.logs)")
        let stepID: Int64 = try await cluster.stepRow(task, step: "fragile").decode("id")
        _ = try await cluster.pool.query("SELECT orcastra.resolve_step(\(stepID), \(JSONText(#"{"fixed": "by hand"}"#)), 'operator resolved')")
        #expect(try await cluster.settled(task) == "complete", "\(cluster.logs)")
        #expect(try await cluster.steps(task)["fragile"] == "resolved_manually")
        guard case .object(let echo)? = try await cluster.result(task, step: "child") else { Issue.record("child has no result"); return }
        #expect(echo["parents"] == ["fragile": ["fixed": "by hand"]])
    }

    @Test func timeoutFailsTheAttemptAndKillsTheProcess() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        let pidFile = NSTemporaryDirectory() + "orcastra-pids-\(UUID().uuidString)"
        defer { unlink(pidFile) }
        try await cluster.register("""
            namespace: e2e
            name: slow
            version: 1.0.0
            steps:
              - name: sleeper
                command: [sh, -c, "\(recordingPIDs(in: pidFile, sleep: 30))"]
                timeout: 300ms
                retry: {max_attempts: 1}
            """)
        try cluster.worker()
        let started = ContinuousClock.now
        let task = try await cluster.submit("e2e/slow")
        #expect(try await cluster.settled(task) == "error", "\(cluster.logs)")
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(try await cluster.stepRow(task, step: "sleeper").decode("last_error", as: String.self).contains("timed out after 300ms"))
        // The command and its child are killed, not left running behind the failed attempt.
        let pids = recordedPIDs(in: pidFile)
        #expect(pids.count == 2, "the command did not record its processes: \(pids)")
        #expect(await waitUntil(within: .seconds(5)) { pids.allSatisfy(processIsGone) }, "still running: \(pids.filter { !processIsGone($0) })")
    }

    @Test func swiftHandlerTimeoutFailsTheAttempt() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register("""
            namespace: e2e
            name: slow_swift
            version: 1.0.0
            steps:
              - {name: nap, handler: orcastra.sleep, timeout: 200ms, retry: {max_attempts: 1}}
            """)
        try cluster.worker()
        let task = try await cluster.submit("e2e/slow_swift", context: ["sleep_ms": 10_000])
        #expect(try await cluster.settled(task) == "error", "\(cluster.logs)")
        #expect(try await cluster.stepRow(task, step: "nap").decode("last_error", as: String.self) == "the handler timed out after 200ms")
        let quick = try await cluster.submit("e2e/slow_swift", context: ["sleep_ms": 10])
        #expect(try await cluster.settled(quick) == "complete")
        #expect(try await cluster.result(quick, step: "nap") == ["slept_ms": 10])
    }

    @Test func cancellingMidRunStopsTheRunningStep() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        let pidFile = NSTemporaryDirectory() + "orcastra-pids-\(UUID().uuidString)"
        defer { unlink(pidFile) }
        try await cluster.register("""
            namespace: e2e
            name: long
            version: 1.0.0
            steps:
              - {name: sleeper, command: [sh, -c, "\(recordingPIDs(in: pidFile, sleep: 30)); echo '{}'"]}
              - {name: after, handler: orcastra.noop, depends_on: [sleeper]}
            """)
        try cluster.worker(["--lease", "1500ms"])
        let task = try await cluster.submit("e2e/long")
        let started = await waitUntil(within: .seconds(10), every: .milliseconds(10)) {
            try await cluster.steps(task)["sleeper"] == "in_progress"
        }
        try #require(started, "the step never started: \(cluster.logs)")
        _ = try await cluster.pool.query("SELECT orcastra.cancel_task(\(task), 'test cancel')")
        #expect(try await cluster.settled(task) == "cancelled")
        #expect(try await cluster.steps(task)["after"] == "cancelled")
        // The running step learns it at its next heartbeat (every 500 ms here).
        var sleeper = ""
        for _ in 0..<100 {
            sleeper = try await cluster.steps(task)["sleeper"] ?? ""
            if sleeper == "cancelled" { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(sleeper == "cancelled", "\(cluster.logs)")
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.step_results r JOIN orcastra.steps s ON s.id = r.step_id WHERE s.task_id = \(task)") == 0)
        // Stopped means the process is gone, not merely that its result was never stored.
        let pids = recordedPIDs(in: pidFile)
        #expect(pids.count == 2, "the command did not record its processes: \(pids)")
        #expect(await waitUntil(within: .seconds(5)) { pids.allSatisfy(processIsGone) }, "still running: \(pids.filter { !processIsGone($0) }) \(cluster.logs)")
    }
}
}
