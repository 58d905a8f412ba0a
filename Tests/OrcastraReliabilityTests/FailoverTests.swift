import Foundation
import OrcastraDevDB
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

/// PostgreSQL failover with real servers: a primary and a hot standby (`pg_basebackup -R`, streaming
/// replication), an orchestrator and two workers on a multi-host URL naming both, a stream of tasks;
/// mid-run the primary crashes (stopped `immediate`) and the standby is promoted. Every process must
/// work against the new primary within 10 s, every task finish, no step outcome be applied twice, and
/// the invariant checker hold (docs/failover.md).
@Suite(.serialized, .timeLimit(.minutes(6))) struct FailoverTests {
    enum Replication: String, Sendable, CaseIterable, CustomTestStringConvertible {
        /// `synchronous_commit = remote_apply`: nothing acknowledged is lost.
        case synchronous
        /// The standby trails the primary; here it is cut off before the crash, so what the primary
        /// committed in that window is lost, deterministically.
        case asynchronous
        var testDescription: String { rawValue }
    }

    static let tasks = 160

    @Test(arguments: Replication.allCases)
    func promotedStandbyTakesOverMidRun(_ replication: Replication) async throws {
        let pair = try await ReplicatedPair.start(synchronous: replication == .synchronous)
        defer { pair.destroy() }
        let runs = pair.folder.appendingPathComponent("runs.log").path
        _ = FileManager.default.createFile(atPath: runs, contents: nil)
        try await Reliability.withCluster(url: pair.multiHostURL) { cluster in
            try await cluster.register(Self.template(recordingIn: runs))
            try await cluster.register(Self.retried)
            try cluster.orchestrator(["--poll-interval", "200ms"])
            for _ in 0..<2 { try cluster.worker(namespace: "failover", ["--lease", "3s", "--concurrency", "4"]) }
            let submitter = Submitter(creator: cluster.creator)
            let stream = Task { await submitter.submit(count: Self.tasks, every: .milliseconds(30)) }

            // Mid-run: a quarter of the tasks done, the rest still coming.
            #expect(await waitUntil(within: .seconds(60), every: .milliseconds(20)) {
                try await cluster.count("SELECT count(*) FROM orcastra.tasks WHERE state = 'complete'") >= Self.tasks / 4
            }, "\(cluster.logs)")
            if replication == .asynchronous {
                // What asynchronous replication loses is what the standby had not received when the
                // primary died: cut it off, let steps run on the primary alone, then crash it.
                try await onDedicatedThread { try pair.standby.detachStandbyBlocking() }
                #expect(await waitUntil(within: .seconds(10)) {
                    try await pair.onPrimary { try await $0.query("SELECT 1 FROM pg_stat_replication").count == 0 }
                })
                let before = Self.lines(runs).count
                #expect(await waitUntil(within: .seconds(20), every: .milliseconds(10)) { Self.lines(runs).count >= before + 8 }, "\(cluster.logs)")
            }
            try await onDedicatedThread { try pair.primary.killBlocking() }
            try await onDedicatedThread { try pair.standby.promoteBlocking() }
            let promoted = ContinuousClock.now
            let promotedAt = try await pair.onStandby { try await $0.queryRow("SELECT now()::text AS t").decode("t", as: String.self) }

            // Every process works against the new primary within 10 s: the orchestrator and both
            // workers LISTEN there again, both workers beat their registry rows and claim steps there,
            // and the orchestrator enqueues a retry (only it does).
            let probe = try await Self.submitWhenPossible(cluster, "failover/retried")
            var reached: [String: Duration] = [:]
            let checks: [(String, SQL, Int)] = [
                ("LISTEN sessions (orchestrator + 2 workers)", "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %'", 3),
                ("workers beating their registry rows", "SELECT count(*) FROM orcastra.workers WHERE last_seen_at > \(promotedAt)::timestamptz", 2),
                ("workers claiming steps", """
                    SELECT count(DISTINCT metadata->>'worker') FROM orcastra.step_transitions
                    WHERE to_state = 'in_progress' AND created_at > \(promotedAt)::timestamptz
                    """, 2),
                ("orchestrator enqueuing a retry", "SELECT count(*) FROM orcastra.tasks WHERE id = \(probe) AND state = 'complete'", 1),
            ]
            let allWorking = await waitUntil(within: .seconds(10), every: .milliseconds(20)) {
                for (name, sql, expected) in checks where reached[name] == nil {
                    if try await cluster.count(sql) >= expected { reached[name] = ContinuousClock.now - promoted }
                }
                return reached.count == checks.count
            }
            print("failover (\(replication.rawValue)): working against the new primary after promotion: \(reached.map { "\($0.key) \($0.value)" }.sorted().joined(separator: "; "))")
            if !allWorking {
                let probeSteps = try await cluster.pool.query("SELECT id FROM orcastra.steps WHERE task_id = \(probe)").count
                Issue.record("only \(reached.keys.sorted()) within 10 s (the probe task has \(probeSteps) steps)\n\(try await Self.unfinished(cluster))\n\(cluster.logs)")
            }

            await stream.value
            let acknowledged = await submitter.acknowledged
            let failures = await submitter.failures
            #expect(acknowledged.count == Self.tasks, "\(failures)")
            // Acknowledged submissions the new primary does not have.
            let present = Set(try await cluster.pool.query("SELECT idempotency_key FROM orcastra.tasks WHERE idempotency_key IS NOT NULL")
                .map { try $0.decode("idempotency_key", as: String.self) })
            let lostSubmissions = acknowledged.keys.filter { !present.contains($0) }.sorted()
            if replication == .synchronous {
                #expect(lostSubmissions.isEmpty, "remote_apply lost acknowledged submissions: \(lostSubmissions)")
            }
            // A client that must not lose a submission sends it again with its key: a task the new
            // primary has is found, not made twice; a lost one is made again.
            let resubmitted = Submitter(creator: cluster.creator)
            for key in acknowledged.keys.sorted() { await resubmitted.submit(key: key) }
            let resubmittedCount = await resubmitted.acknowledged.count
            let createdAgain = await resubmitted.createdAgain
            #expect(resubmittedCount == Self.tasks)
            #expect(createdAgain == lostSubmissions.count)

            // Every task finishes.
            let finished = await waitUntil(within: .seconds(60), every: .milliseconds(100)) {
                try await cluster.count("SELECT count(*) FROM orcastra.tasks WHERE template_id = (SELECT id FROM orcastra.templates WHERE name = 'stream') AND state = 'complete'") == Self.tasks
            }
            if !finished { Issue.record("not every task finished:\n\(try await Self.unfinished(cluster))\n\(cluster.logs)") }
            // No step outcome applied twice: one completion and one result per step.
            #expect(try await cluster.count("SELECT count(*) FROM orcastra.steps s JOIN orcastra.tasks t ON t.id = s.task_id WHERE t.idempotency_key LIKE 'failover-%' AND s.state = 'complete'") == 2 * Self.tasks)
            #expect(try await cluster.count("""
                SELECT count(*) FROM (SELECT step_id FROM orcastra.step_transitions WHERE to_state = 'complete' GROUP BY step_id HAVING count(*) > 1) twice
                """) == 0)
            #expect(try await cluster.count("SELECT count(*) FROM (SELECT step_id FROM orcastra.step_results GROUP BY step_id HAVING count(*) > 1) twice") == 0)

            // What ran more than once: a step attempt whose claim the crash lost runs again under the
            // same attempt number; one whose outcome was lost, after its lease expired, as the next.
            let executions = Self.lines(runs)
            var perAttempt: [String: Int] = [:], perStep: [String: Int] = [:]
            for line in executions {
                let fields = line.split(separator: " ")
                guard fields.count == 3 else { continue }
                perAttempt[line, default: 0] += 1
                perStep["\(fields[0]) \(fields[1])", default: 0] += 1
            }
            let attemptsRunTwice = perAttempt.values.filter { $0 > 1 }.count
            let stepsRunAgain = perStep.values.filter { $0 > 1 }.count
            print("failover (\(replication.rawValue)): \(executions.count) handler runs for \(2 * Self.tasks) steps; \(stepsRunAgain) steps ran more than once, \(attemptsRunTwice) attempts ran twice; \(lostSubmissions.count) acknowledged submissions lost and made again")
            switch replication {
            case .synchronous:
                // Nothing acknowledged was lost: no attempt ran twice (a lease that expired during
                // the outage may still give a step another attempt).
                #expect(attemptsRunTwice == 0, "\(perAttempt.filter { $0.value > 1 })")
            case .asynchronous:
                // What the standby never received is lost: those steps ran again on the new primary.
                #expect(stepsRunAgain > 0, "the crash lost nothing; the test did not test asynchronous loss")
            }
            try await Reliability.expectInvariantsHold(pair.standbyURL, logs: cluster.logs)
        }
    }

    // MARK: - Support

    static func template(recordingIn file: String) -> String {
        let command = "[sh, -c, 'echo \"$ORCASTRA_TASK_ID $ORCASTRA_STEP_NAME $ORCASTRA_ATTEMPT\" >> \(file); sleep 0.05; echo \"{}\"']"
        return """
            namespace: failover
            name: stream
            version: 1.0.0
            steps:
              - name: work
                command: \(command)
              - name: after
                depends_on: [work]
                command: \(command)
            """
    }

    /// Fails its first attempt: only an orchestrator enqueues the retry.
    static let retried = """
        namespace: failover
        name: retried
        version: 1.0.0
        defaults:
          retry: {max_attempts: 3, backoff: fixed, initial_delay: 100ms, jitter: false}
        steps:
          - name: flaky
            command: [sh, -c, '[ "$ORCASTRA_ATTEMPT" -ge 2 ] && echo "{}" || exit 1']
        """

    /// Every step not complete, with its history, for failure messages.
    static func unfinished(_ cluster: ProcessCluster) async throws -> String {
        try await cluster.pool.query("""
            SELECT s.id, t.idempotency_key, s.name, s.state, s.attempts, s.lease_owner, s.lease_expires_at::text, s.visible_at::text, s.last_error,
                   (SELECT string_agg(coalesce(x.from_state, '-') || '>' || x.to_state || ' #' || x.attempt || ' ' || x.reason || ' @' || x.created_at::text, ' | ' ORDER BY x.id)
                    FROM orcastra.step_transitions x WHERE x.step_id = s.id) AS history
            FROM orcastra.steps s JOIN orcastra.tasks t ON t.id = s.task_id WHERE s.state <> 'complete' ORDER BY s.id
            """).rows.map { row in
                ["id", "idempotency_key", "name", "state", "attempts", "lease_owner", "lease_expires_at", "visible_at", "last_error", "history"]
                    .map { row[$0] ?? "NULL" }.joined(separator: " ")
            }.joined(separator: "\n")
    }

    static func lines(_ file: String) -> [String] {
        ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(whereSeparator: \.isNewline).map(String.init)
    }

    static func submitWhenPossible(_ cluster: ProcessCluster, _ reference: String) async throws -> UUID {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do { return try await cluster.submit(reference) } catch {
                if ContinuousClock.now > deadline { throw error }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }
}

/// Submits tasks with idempotency keys, trying each again until the database acknowledges it
/// (through a failover, a submission can fail; sent again with its key it is never made twice).
actor Submitter {
    let creator: TaskCreator
    private(set) var acknowledged: [String: UUID] = [:]
    private(set) var createdAgain = 0
    private(set) var failures: [String] = []

    init(creator: TaskCreator) { self.creator = creator }

    func submit(count: Int, every interval: Duration) async {
        for index in 0..<count {
            await submit(key: "failover-\(index)")
            try? await Task.sleep(for: interval)
        }
    }

    func submit(key: String) async {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            do {
                let reference = try TemplateReference(parsing: "failover/stream")
                let creation = try await creator.create(TaskRequest(template: reference, idempotencyKey: key))
                acknowledged[key] = creation.taskID
                if creation.created { createdAgain += 1 }
                return
            } catch {
                if failures.count < 20 { failures.append("\(key): \(error)") }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
    }
}
