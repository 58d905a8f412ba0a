import Foundation
import Logging
import OrcastraPostgres
import OrcastraTemplates

/// A namespace worker: claims enqueued steps with `FOR UPDATE SKIP LOCKED`, runs their handlers
/// (Swift `StepHandler`s or `command`s), keeps their leases alive, and reports outcomes — all through
/// the SQL functions of docs/worker-protocol.md.
///
/// It wakes on its namespace's NOTIFY channel, on a polling timer, and whenever a handler finishes;
/// each wake-up claims until a claim comes back short of a full batch. `run()` returns after a
/// graceful shutdown when its task is cancelled: it stops claiming, lets running handlers finish
/// within the grace period, and hands back the steps that did not.
public actor Worker {
    public nonisolated let configuration: WorkerConfiguration
    private let registry: HandlerRegistry
    private let logger: Logger

    private let claimSlot: ConnectionSlot
    private let reportSlot: ConnectionSlot
    private let heartbeatSlot: ConnectionSlot

    private struct Running {
        var step: ClaimedStep
        var task: Task<Void, Never>
        /// When a Swift handler's time is up (command steps time out in their runner).
        var deadline: ContinuousClock.Instant?
        var timeout: Duration = .zero
    }

    /// Steps cancelled because their deadline passed: reported as timed out, not dropped.
    private var timedOut: [Int64: Duration] = [:]

    private var running: [Int64: Running] = [:]
    /// Slots promised to claims in flight, so the claim loop and the reporter never overfill.
    private var reserved = 0
    /// Attempts (by lease token, not step id: the same step may come back to this worker under a
    /// new lease) whose lease was lost or whose task was cancelled: their outcome is dropped.
    private var abandoned: Set<UUID> = []
    private var pendingOutcomes: [StepOutcome] = []
    private var templates: [Int64: WorkflowTemplate] = [:]

    private let wake: AsyncStream<Void>.Continuation
    private let wakeups: AsyncStream<Void>
    private let reportWake: AsyncStream<Void>.Continuation
    private let reportWakeups: AsyncStream<Void>

    public init(configuration: WorkerConfiguration, handlers: HandlerRegistry = .builtIn,
                logger: Logger = Logger(label: "orcastra.worker")) {
        precondition(configuration.concurrency > 0 && configuration.claimBatch > 0)
        self.configuration = configuration
        registry = handlers
        var logger = logger
        logger[metadataKey: "worker"] = "\(configuration.workerID)"
        logger[metadataKey: "namespace"] = "\(configuration.namespace)"
        self.logger = logger
        claimSlot = ConnectionSlot(conninfo: configuration.conninfo, logger: logger)
        reportSlot = ConnectionSlot(conninfo: configuration.conninfo, logger: logger)
        heartbeatSlot = ConnectionSlot(conninfo: configuration.conninfo, logger: logger)
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (reportWakeups, reportWake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// The channel a namespace's workers LISTEN on.
    public static func channel(for namespace: String) -> String { "orcastra_ns_\(namespace)" }

    /// Works until the calling task is cancelled, then shuts down gracefully and returns.
    public func run() async {
        logger.info("worker started", metadata: ["concurrency": "\(configuration.concurrency)", "lease": "\(configuration.lease)"])
        let listener = PostgresListener(conninfo: configuration.conninfo, channels: [Self.channel(for: configuration.namespace)], logger: logger)
        let wake = self.wake
        let listening = Task {
            // Every event wakes the claim loop; `.listening` after a reconnect makes it catch up.
            for await _ in listener { wake.yield() }
        }
        let pollInterval = configuration.pollInterval
        let polling = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: pollInterval)
                wake.yield()
            }
        }
        let reporting = Task { await self.reportLoop() }
        let heartbeating = Task { await self.heartbeatLoop() }
        let enforcing = Task { await self.deadlineLoop() }

        await claimLoop()

        // Shutdown runs in a task of its own: ours is cancelled, and its queries must still go out.
        listener.stop()
        listening.cancel()
        polling.cancel()
        await Task { await self.shutDown() }.value
        reporting.cancel()
        heartbeating.cancel()
        enforcing.cancel()
        await claimSlot.close()
        await reportSlot.close()
        await heartbeatSlot.close()
        logger.info("worker stopped")
    }

    // MARK: - Claiming

    private func claimLoop() async {
        var backoff = Backoff()
        for await _ in wakeups {
            if Task.isCancelled { break }
            while !Task.isCancelled {
                let limit = min(freeSlots, configuration.claimBatch)
                guard limit > 0 else { break }
                reserved += limit
                do {
                    let claimed = try await claim(limit: limit)
                    reserved -= limit
                    backoff.reset()
                    for step in claimed { start(step) }
                    if claimed.count < limit { break }
                } catch {
                    reserved -= limit
                    if Task.isCancelled { break }
                    let delay = backoff.next()
                    logger.warning("claiming failed; retrying", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                    try? await Task.sleep(for: delay)
                }
            }
        }
    }

    private var freeSlots: Int { configuration.concurrency - running.count - reserved }

    private func claim(limit: Int) async throws -> [ClaimedStep] {
        let connection = try await claimSlot.get()
        return try await connection.query(claimStatement(limit: limit)).map(ClaimedStep.init(row:))
    }

    private func claimStatement(limit: Int) -> SQL {
        """
        SELECT * FROM orcastra.claim_steps(\(configuration.namespace), \(configuration.workerID), \(limit)::int, \(Int(configuration.lease.milliseconds))::int)
        """
    }

    private func start(_ step: ClaimedStep) {
        let task = Task { await self.execute(step) }
        running[step.id] = Running(step: step, task: task, deadline: nil)
        logger.debug("step claimed", metadata: ["task": "\(step.taskID)", "step": "\(step.name)", "attempt": "\(step.attempt)"])
    }

    // MARK: - Running handlers

    private func template(_ id: Int64) async throws -> WorkflowTemplate {
        if let cached = templates[id] { return cached }
        let connection = try await claimSlot.get()
        let text = try await connection.queryRow("SELECT definition FROM orcastra.templates WHERE id = \(id)").decode("definition", as: String.self)
        let template = try WorkflowTemplate(normalizedJSON: text)
        templates[id] = template
        return template
    }

    private func execute(_ step: ClaimedStep) async {
        var stepLogger = logger
        stepLogger[metadataKey: "task"] = "\(step.taskID)"
        stepLogger[metadataKey: "step"] = "\(step.name)"
        let result: StepOutcome.Result
        do {
            let template = try await template(step.templateID)
            guard let definition = template.step(named: step.name) else {
                throw StepFailure.permanent("template \(template.reference) has no step \(step.name)")
            }
            let context = StepContext(taskID: step.taskID, stepName: step.name, attempt: step.attempt, maxAttempts: step.maxAttempts,
                                      taskContext: step.context, parents: step.parents, logger: stepLogger)
            let timeout = Duration.milliseconds(definition.timeout.milliseconds)
            if case .handler = definition.action {
                running[step.id]?.deadline = .now + timeout
                running[step.id]?.timeout = timeout
            }
            let value = try await perform(definition, step: step, context: context, timeout: timeout)
            let size = value.jsonText.utf8.count
            guard size <= configuration.limits.maximumResultBytes else {
                throw StepFailure.permanent("the result is \(size) bytes, over the limit of \(configuration.limits.maximumResultBytes)")
            }
            result = .success(value)
        } catch let failure as StepFailure {
            result = failureResult(failure, step: step)
        } catch is CancellationError {
            guard let limit = timedOut.removeValue(forKey: step.id) else {
                // Cancelled because the task was cancelled or the lease was lost: nothing to report.
                abandoned.remove(step.leaseToken)
                return
            }
            result = failureResult(.retryable("the handler timed out after \(TemplateDuration(milliseconds: limit.milliseconds))"), step: step)
        } catch {
            result = failureResult(.retryable("\(error)"), step: step)
        }
        record(StepOutcome(step: step, result: result))
    }

    private nonisolated func perform(_ definition: StepDefinition, step: ClaimedStep, context: StepContext,
                                     timeout: Duration) async throws -> JSONValue {
        switch definition.action {
        case .command(let spec):
            let input: JSONValue = .object(["context": step.context, "parents": .object(step.parents)])
            return try await CommandStep.run(spec, input: input, step: context, timeout: timeout, limits: configuration.limits)
        case .handler(let name):
            guard let handler = registry.handler(named: name) else {
                throw StepFailure.retryable("no handler named \(name) is registered in worker \(configuration.workerID) (namespace \(configuration.namespace)); it has: \(registry.names.joined(separator: ", "))")
            }
            // The deadline loop cancels it when its timeout passes.
            return try await handler(step.context, context)
        }
    }

    private nonisolated func failureResult(_ failure: StepFailure, step: ClaimedStep) -> StepOutcome.Result {
        switch failure {
        case .permanent(let message):
            return .failure(message: message, retryAfter: nil)
        case .retryable(let message):
            // The retry policy lives in the template; the cache is warm once a step ran.
            return .failure(message: message, retryAfter: .zero)
        }
    }

    private func record(_ outcome: StepOutcome) {
        guard abandoned.remove(outcome.step.leaseToken) == nil else { return }
        var outcome = outcome
        if case .failure(let message, .some) = outcome.result,
           let policy = templates[outcome.step.templateID]?.step(named: outcome.step.name)?.retry {
            let delay = policy.delay(afterAttempt: outcome.step.attempt, random: Double.random(in: 0..<1))
            outcome.result = .failure(message: message, retryAfter: .milliseconds(delay.milliseconds))
        }
        pendingOutcomes.append(outcome)
        reportWake.yield()
    }

    // MARK: - Reporting

    private func reportLoop() async {
        var backoff = Backoff()
        for await _ in reportWakeups {
            while !pendingOutcomes.isEmpty {
                await coalesce()
                let batch = pendingOutcomes
                pendingOutcomes.removeAll()
                do {
                    try await report(batch)
                    backoff.reset()
                } catch {
                    // Keep them; the leases last a while, and a lost lease is handled by the server.
                    pendingOutcomes.insert(contentsOf: batch, at: 0)
                    let delay = backoff.next()
                    logger.warning("reporting outcomes failed; retrying", metadata: ["error": "\(error)", "steps": "\(batch.count)", "retry_in": "\(delay)"])
                    try? await Task.sleep(for: delay)
                    if Task.isCancelled && pendingOutcomes.isEmpty { return }
                }
            }
            if Task.isCancelled { return }
        }
    }

    /// Under load, waits up to a millisecond for more handlers to finish, so one commit reports
    /// many steps; a lone step is reported at once.
    private func coalesce() async {
        let deadline = ContinuousClock.now + .milliseconds(1)
        while pendingOutcomes.count < running.count, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .microseconds(100))
        }
    }

    /// Reports a batch — successes with `complete_steps`, failures with `fail_steps` — and refills the
    /// freed slots with `claim_steps`, all in one pipelined round trip and one transaction: a
    /// finished step's children are claimed by the worker that finished it without waiting for a
    /// notification, and each step costs one commit instead of two.
    private func report(_ batch: [StepOutcome]) async throws {
        let connection = try await reportSlot.get()
        var ids: [Int64] = [], tokens: [UUID] = [], results: [JSONText] = []
        var failedIDs: [Int64] = [], failedTokens: [UUID] = [], errors: [String] = [], retries: [Int?] = []
        for outcome in batch {
            switch outcome.result {
            case .success(let value):
                ids.append(outcome.step.id); tokens.append(outcome.step.leaseToken); results.append(JSONText(value.jsonText))
            case .failure(let message, let retryAfter):
                failedIDs.append(outcome.step.id); failedTokens.append(outcome.step.leaseToken); errors.append(message)
                retries.append(retryAfter.map { Int($0.milliseconds) })
            }
        }
        var statements: [SQL] = []
        if !ids.isEmpty {
            statements.append("SELECT * FROM orcastra.complete_steps(\(ids), \(tokens), \(results))")
        }
        if !failedIDs.isEmpty {
            statements.append("SELECT * FROM orcastra.fail_steps(\(failedIDs), \(failedTokens), \(errors), \(retries)::int[])")
        }
        // The slots this batch frees, less what the claim loop has promised meanwhile.
        let refill = Task.isCancelled ? 0 : min(configuration.claimBatch, freeSlots + batch.count)
        if refill > 0 { statements.append(claimStatement(limit: refill)) }
        reserved += refill
        let replies: [QueryResult]
        do {
            replies = try await connection.pipeline(statements)
            reserved -= refill
        } catch {
            reserved -= refill
            throw error
        }
        let rows = (refill > 0 ? replies.dropLast() : replies[...]).flatMap { $0.rows }
        let byID = Dictionary(batch.map { ($0.step.id, $0) }, uniquingKeysWith: { first, _ in first })
        for row in rows {
            let id: Int64 = try row.decode("step_id")
            let outcome: String = try row.decode("outcome")
            let taskState: String? = try row.decode("task_state")
            // Only this attempt's entry: the step may be running again here under a new lease.
            if let reported = byID[id], running[id]?.step.leaseToken == reported.step.leaseToken { running[id] = nil }
            guard let step = byID[id]?.step else { continue }
            let metadata: Logger.Metadata = ["task": "\(step.taskID)", "step": "\(step.name)", "attempt": "\(step.attempt)"]
            switch outcome {
            case "completed": logger.debug("step complete", metadata: metadata)
            case "waiting_for_retry", "error":
                if case .failure(let message, _) = byID[id]?.result {
                    logger.log(level: outcome == "error" ? .error : .warning, "step attempt failed",
                               metadata: metadata.merging(["error": "\(message)", "next": "\(outcome)"]) { $1 })
                }
            case "ignored": logger.info("step outcome ignored: its task was cancelled", metadata: metadata)
            default: logger.warning("step outcome refused: the lease was lost (the step may run elsewhere)", metadata: metadata)
            }
            if let taskState {
                logger.log(level: taskState == "error" ? .error : .info, "task \(taskState)", metadata: ["task": "\(step.taskID)"])
            }
        }
        if refill > 0, let claimed = replies.last {
            let steps = try claimed.map(ClaimedStep.init(row:))
            for step in steps { start(step) }
            if steps.count == refill { wake.yield() }  // a full batch: there may be more
        } else {
            wake.yield()  // slots freed
        }
    }

    // MARK: - Heartbeats

    private func heartbeatLoop() async {
        let interval = configuration.lease / 3
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            await heartbeat()
        }
    }

    private func heartbeat() async {
        let held = running.values.map(\.step)
        guard !held.isEmpty else { return }
        do {
            let connection = try await heartbeatSlot.get()
            let rows = try await connection.query("""
                SELECT * FROM orcastra.heartbeat_steps(\(held.map(\.id)), \(held.map(\.leaseToken)), \(Int(configuration.lease.milliseconds))::int)
                """)
            let sent = Dictionary(held.map { ($0.id, $0.leaseToken) }, uniquingKeysWith: { first, _ in first })
            for row in rows where try !row.decode("alive", as: Bool.self) {
                let id: Int64 = try row.decode("step_id")
                guard let entry = running[id], entry.step.leaseToken == sent[id] else { continue }
                abandoned.insert(entry.step.leaseToken)
                entry.task.cancel()
                running[id] = nil
                wake.yield()
                logger.info("step stopped: its task was cancelled or its lease lost", metadata: ["task": "\(entry.step.taskID)", "step": "\(entry.step.name)"])
            }
        } catch {
            logger.warning("heartbeat failed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: - Timeouts

    /// Cancels Swift handlers whose timeout passed, checking every 50 ms.
    ///
    /// One loop for all steps instead of a `Task.sleep` per step: a cancelled sleep's timer stays
    /// queued until it would have fired, so a per-step sleep of the default 5-minute timeout kept
    /// about 0.6 KiB per step alive for five minutes — memory that grew with throughput.
    private func deadlineLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(50))
            let now = ContinuousClock.now
            for (id, entry) in running {
                guard let deadline = entry.deadline, deadline <= now, timedOut[id] == nil else { continue }
                timedOut[id] = entry.timeout
                entry.task.cancel()
            }
        }
    }

    // MARK: - Shutdown

    private func shutDown() async {
        let deadline = ContinuousClock.now + configuration.gracePeriod
        if !running.isEmpty {
            logger.info("waiting for running steps to finish", metadata: ["steps": "\(running.count)", "grace": "\(configuration.gracePeriod)"])
        }
        // Running handlers and the reporter keep going; wait until every step was reported.
        while !(running.isEmpty && pendingOutcomes.isEmpty), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let unfinished = running.values.map(\.step)
        guard !unfinished.isEmpty else { return }
        for step in unfinished {
            abandoned.insert(step.leaseToken)
            running[step.id]?.task.cancel()
        }
        running.removeAll()
        do {
            let connection = try await reportSlot.get()
            let handedBack = try await connection.query("""
                SELECT * FROM orcastra.release_steps(\(unfinished.map(\.id)), \(unfinished.map(\.leaseToken)))
                """).count
            logger.info("handed back unfinished steps", metadata: ["steps": "\(handedBack)"])
        } catch {
            logger.error("could not hand back unfinished steps; they return when their leases expire", metadata: ["error": "\(error)"])
        }
    }
}
