import Foundation
import Logging
import OrcastraPostgres
import OrcastraStateMachines
import OrcastraTemplates
import ServiceLifecycle

/// A namespace worker: claims enqueued steps with `FOR UPDATE SKIP LOCKED`, runs their handlers
/// (Swift `StepHandler`s or `command`s), keeps their leases alive, and reports outcomes — all through
/// the SQL functions of docs/worker-protocol.md.
///
/// It is a `Service` (swift-service-lifecycle): run it in a `ServiceGroup`, whose graceful shutdown
/// stops claiming at once, lets running handlers finish within the grace period (they see
/// `StepContext.isCancelled`), reports their outcomes and hands back the steps that did not
/// finish. Cancelling `run()` stops at once: handlers are cancelled and their steps handed back.
///
/// The bookkeeping lives in `WorkerState`, a value whose methods say what to do; this actor only
/// performs the I/O: one connection claims, one reports (and refills the freed slots in the same
/// transaction), one heartbeats and reads templates, and a listener wakes the claim loop.
public actor Worker: Service {
    public nonisolated let configuration: WorkerConfiguration
    private let registry: HandlerRegistry
    private let logger: Logger

    private let claimSlot: ConnectionSlot
    private let reportSlot: ConnectionSlot
    private let heartbeatSlot: ConnectionSlot
    private let templates: TemplateCache

    private var state: WorkerState
    /// The task running each held step's handler, by lease.
    private var handlers: [Lease: Task<Void, Never>] = [:]
    private let shutdownFlag = ShutdownFlag()

    private let wake: AsyncStream<Void>.Continuation
    private let wakeups: AsyncStream<Void>
    private let reportWake: AsyncStream<Void>.Continuation
    private let reportWakeups: AsyncStream<Void>
    private let stopRequest: AsyncStream<Void>.Continuation
    private let stopRequests: AsyncStream<Void>

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
        templates = TemplateCache(slot: heartbeatSlot)
        state = WorkerState(concurrency: configuration.concurrency, claimBatch: configuration.claimBatch, lease: configuration.lease)
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (reportWakeups, reportWake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (stopRequests, stopRequest) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks the running worker to shut down gracefully (what a `ServiceGroup` does on SIGTERM).
    public nonisolated func shutDownGracefully() {
        shutdownFlag.set()
        stopRequest.yield()
    }

    /// Works until a graceful shutdown (then drains) or until cancelled (then stops at once).
    public func run() async {
        await withGracefulShutdownHandler {
            await self.work()
        } onGracefulShutdown: {
            self.shutDownGracefully()
        }
    }

    private func work() async {
        logger.info("worker started", metadata: ["concurrency": "\(configuration.concurrency)", "lease": "\(configuration.lease)"])
        guard let channel = await channelName() else {
            logger.info("worker stopped before it could start")
            return
        }
        let listener = PostgresListener(conninfo: configuration.conninfo, channels: [channel], logger: logger)
        await withDiscardingTaskGroup { group in
            let wake = self.wake
            // Every event wakes the claim loop; `.listening` after a reconnect makes it catch up.
            group.addTask { for await _ in listener { wake.yield() } }
            let pollInterval = configuration.pollInterval
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: pollInterval)
                    wake.yield()
                }
            }
            group.addTask { await self.reportLoop() }
            group.addTask { await self.heartbeatLoop() }
            group.addTask { await self.deadlineLoop() }
            group.addTask { await self.claimLoop() }

            // Until a graceful shutdown is asked for, or the task is cancelled.
            for await _ in stopRequests { break }
            await drain()
            listener.stop()
            group.cancelAll()
        }
        await claimSlot.close()
        await reportSlot.close()
        await heartbeatSlot.close()
        logger.info("worker stopped")
    }

    /// The channel this namespace's work is announced on, as the database names it (long
    /// namespaces get a shortened name). Retries until the database answers; nil if cancelled first.
    private func channelName() async -> String? {
        var backoff = Backoff()
        while !Task.isCancelled && !shutdownFlag.isSet {
            do {
                let connection = try await claimSlot.get()
                return try await connection.queryRow("SELECT orcastra.namespace_channel(\(configuration.namespace)) AS channel")
                    .decode("channel", as: String.self)
            } catch {
                let delay = backoff.next()
                if (error as? PostgresError)?.sqlState == "42883" {
                    logger.error("the database has no orcastra.namespace_channel(): its schema is older than this worker; run `orcastra migrate`. Retrying",
                                 metadata: ["retry_in": "\(delay)"])
                } else {
                    logger.warning("cannot reach the database; retrying", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                }
                try? await Task.sleep(for: delay)
            }
        }
        return nil
    }

    // MARK: - Claiming

    private func claimLoop() async {
        var backoff = Backoff()
        for await _ in wakeups {
            if Task.isCancelled || state.isDraining { break }
            while true {
                let limit = state.reserveClaim()
                guard limit > 0 else { break }
                let sentAt = ContinuousClock.now
                do {
                    let connection = try await claimSlot.get()
                    let rows = try await connection.query(claimStatement(limit: limit))
                    let steps = await accept(rows, reserved: limit, sentAt: sentAt)
                    backoff.reset()
                    if steps < limit { break }
                } catch {
                    state.claimEnded(reserved: limit, steps: [], sentAt: sentAt)
                    if Task.isCancelled || state.isDraining { break }
                    let delay = backoff.next()
                    logger.warning("claiming failed; retrying", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                    try? await Task.sleep(for: delay)
                }
            }
        }
    }

    private func claimStatement(limit: Int) -> SQL {
        """
        SELECT * FROM orcastra.claim_steps(\(configuration.namespace), \(configuration.workerID), \(limit)::int, \(Int(configuration.lease.milliseconds))::int)
        """
    }

    /// Takes the claimed rows: each step starts at once. A row that cannot be read is handed back
    /// so it is not left owned by nobody. Returns how many rows came back.
    private func accept(_ rows: QueryResult, reserved: Int, sentAt: ContinuousClock.Instant) async -> Int {
        var steps: [ClaimedStep] = []
        var unreadable: [Lease] = []
        for row in rows {
            switch ClaimedStep.decode(row) {
            case .success(let step): steps.append(step)
            case .failure(let failure):
                logger.error("a claimed row could not be read; handing it back", metadata: ["error": "\(failure.error)"])
                if let lease = failure.lease { unreadable.append(lease) }
            }
        }
        state.claimEnded(reserved: reserved, steps: steps, sentAt: sentAt)
        for step in steps { start(step) }
        if !unreadable.isEmpty { await handBack(unreadable) }
        return rows.count
    }

    private func start(_ step: ClaimedStep) {
        handlers[step.lease] = Task { await self.execute(step) }
        logger.debug("step claimed", metadata: ["task": "\(step.taskID)", "step": "\(step.name)", "attempt": "\(step.attempt)"])
    }

    // MARK: - Running handlers

    /// Runs one attempt in its own task, off the actor: reading the input, the handler, checking
    /// and serializing the result. Only the bookkeeping at the end comes back to the actor.
    private nonisolated func execute(_ step: ClaimedStep) async {
        var stepLogger = logger
        stepLogger[metadataKey: "task"] = "\(step.taskID)"
        stepLogger[metadataKey: "step"] = "\(step.name)"
        var policy: RetryPolicy?
        let result: StepOutcome.Result
        do {
            let template = try await templates.template(step.templateID)
            guard let definition = template.step(named: step.name) else {
                throw StepFailure.permanent("template \(template.reference) has no step \(step.name)")
            }
            policy = definition.retry
            let input = try step.input()
            let context = StepContext(taskID: step.taskID, stepName: step.name, attempt: step.attempt, maxAttempts: step.maxAttempts,
                                      taskContext: input.context, parents: input.parents, logger: stepLogger, shutdown: shutdownFlag)
            let timeout = Duration.milliseconds(definition.timeout.milliseconds)
            let value = try await perform(definition, step: step, input: input, context: context, timeout: timeout)
            result = try Self.storable(value, limits: configuration.limits)
        } catch let failure as StepFailure {
            result = Self.failure(failure, step: step, policy: policy)
        } catch is CancellationError {
            switch await cancellationReason(step.lease) {
            case .abandoned:
                await handlerGone(step.lease)
                return
            case .timedOut(let limit):
                let message = "the handler timed out after \(TemplateDuration(milliseconds: limit.milliseconds))"
                result = Self.failure(.retryable(message), step: step, policy: policy)
            }
        } catch {
            result = Self.failure(.retryable("\(error)"), step: step, policy: policy)
        }
        await finish(StepOutcome(step: step, result: result))
    }

    private nonisolated func perform(_ definition: StepDefinition, step: ClaimedStep,
                                     input: (context: JSONValue, parents: [String: JSONValue]),
                                     context: StepContext, timeout: Duration) async throws -> JSONValue {
        switch definition.action {
        case .command(let spec):
            let stdin: JSONValue = .object(["context": input.context, "parents": .object(input.parents)])
            return try await CommandStep.run(spec, input: stdin, step: context, timeout: timeout, limits: configuration.limits)
        case .handler(let name):
            guard let handler = registry.handler(named: name) else {
                throw StepFailure.retryable("no handler named \(name) is registered in worker \(configuration.workerID) (namespace \(configuration.namespace)); it has: \(registry.names.joined(separator: ", "))")
            }
            // The deadline loop cancels it when its timeout passes.
            await handlerStarted(step.lease, timeout: timeout)
            return try await handler(input.context, context)
        }
    }

    /// The result as JSON text, or a permanent failure saying why it cannot be stored.
    private static func storable(_ value: JSONValue, limits: ResultLimits) throws -> StepOutcome.Result {
        let text = value.jsonText
        let size = text.utf8.count
        guard size <= limits.maximumResultBytes else {
            throw StepFailure.permanent("the result is \(size) bytes, over the limit of \(limits.maximumResultBytes)")
        }
        if let problem = value.unstorableReason() {
            throw StepFailure.permanent("result not storable: \(problem)")
        }
        return .success(json: text)
    }

    private static func failure(_ failure: StepFailure, step: ClaimedStep, policy: RetryPolicy?) -> StepOutcome.Result {
        switch failure {
        case .permanent(let message):
            return .failure(message: Storable.errorMessage(message), retryAfterMilliseconds: nil)
        case .retryable(let message):
            let delay = policy?.delay(afterAttempt: step.attempt, random: Double.random(in: 0..<1)).milliseconds ?? 0
            return .failure(message: Storable.errorMessage(message), retryAfterMilliseconds: delay)
        }
    }

    private func handlerStarted(_ lease: Lease, timeout: Duration) {
        state.setHandlerTimeout(lease, timeout, now: .now)
    }

    private func cancellationReason(_ lease: Lease) -> WorkerState.CancellationReason {
        state.cancellationReason(lease)
    }

    private func handlerGone(_ lease: Lease) {
        handlers[lease] = nil
    }

    private func finish(_ outcome: StepOutcome) {
        handlers[outcome.step.lease] = nil
        if state.handlerFinished(outcome) { reportWake.yield() }
    }

    // MARK: - Reporting

    private func reportLoop() async {
        var backoff = Backoff()
        for await _ in reportWakeups {
            while state.hasFinished {
                await coalesce()
                let batch = state.takeBatch()
                if batch.isEmpty { break }
                if await report(batch) {
                    backoff.reset()
                } else {
                    let delay = backoff.next()
                    try? await Task.sleep(for: delay)
                }
            }
            if Task.isCancelled { return }
        }
    }

    /// Under load, waits up to a millisecond for more handlers to finish, so one commit reports
    /// many steps; a lone step is reported at once.
    private func coalesce() async {
        let deadline = ContinuousClock.now + .milliseconds(1)
        while state.runningCount > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .microseconds(100))
        }
    }

    /// Reports a batch with one `report_steps` call and refills the freed slots with `claim_steps`,
    /// in one pipelined round trip and one transaction: a finished step's children are claimed by
    /// the worker that finished it without waiting for a notification, and a batch costs one commit.
    ///
    /// When the database refuses the batch (not the connection: the data), each outcome is reported
    /// alone, so one outcome it cannot store never holds back the others; that one ends its own step
    /// with a readable error. Returns false when the report must be tried again later.
    private func report(_ batch: [StepOutcome]) async -> Bool {
        let refill = state.reserveRefill(freeing: batch.count)
        var statements = [Self.reportStatement(batch)]
        if refill > 0 { statements.append(claimStatement(limit: refill)) }
        let sentAt = ContinuousClock.now
        do {
            let connection = try await reportSlot.get()
            let replies = try await connection.pipeline(statements)
            state.reported(batch)
            log(replies[0], batch: batch)
            if refill > 0 {
                let claimed = await accept(replies[1], reserved: refill, sentAt: sentAt)
                if claimed == refill { wake.yield() }  // a full batch: there may be more
            } else {
                wake.yield()  // slots freed
            }
            return true
        } catch {
            if refill > 0 { state.releaseReservation(refill) }
            guard Self.isRefusal(error) else {
                let dropped = state.reportFailed(batch)
                logger.warning("reporting outcomes failed; retrying", metadata: ["error": "\(error)", "steps": "\(batch.count)"])
                for outcome in dropped {
                    logger.error("giving up reporting a step; its lease will expire and it will be retried",
                                 metadata: ["task": "\(outcome.step.taskID)", "step": "\(outcome.step.name)"])
                }
                if !dropped.isEmpty { wake.yield() }
                return false
            }
            if batch.count > 1 {
                logger.warning("the database refused a batch of outcomes; reporting them one by one", metadata: ["error": "\(error)"])
                for outcome in batch { await reportAlone(outcome) }
            } else {
                await reportAlone(batch[0], refusal: error)
            }
            return true
        }
    }

    /// Reports one outcome; if the database refuses it, reports instead a failure that says why.
    private func reportAlone(_ outcome: StepOutcome, refusal: (any Error)? = nil) async {
        var attempt = outcome
        var refusal = refusal
        for _ in 0..<2 {
            if let error = refusal {
                let reason = Storable.errorMessage("\(error)")
                attempt.result = outcome.isSuccess
                    ? .failure(message: "result not storable: \(reason)", retryAfterMilliseconds: nil)
                    : .failure(message: "the step failed, and its error could not be stored: \(reason)", retryAfterMilliseconds: nil)
            }
            do {
                let connection = try await reportSlot.get()
                let reply = try await connection.query(Self.reportStatement([attempt]))
                state.reported([outcome])
                log(reply, batch: [attempt])
                wake.yield()
                return
            } catch {
                guard Self.isRefusal(error) else {
                    // A passing fault: the reporter tries again later.
                    _ = state.reportFailed([outcome])
                    reportWake.yield()
                    return
                }
                if refusal != nil { break }
                refusal = error
            }
        }
        state.drop(outcome.step.lease)
        logger.error("the database refused this step's outcome; its lease will expire and it will be retried",
                     metadata: ["task": "\(outcome.step.taskID)", "step": "\(outcome.step.name)", "error": "\(refusal.map { "\($0)" } ?? "")"])
        wake.yield()
    }

    static func reportStatement(_ batch: [StepOutcome]) -> SQL {
        var ids: [Int64] = [], tokens: [UUID] = [], results: [JSONText?] = [], errors: [String?] = [], retries: [Int64?] = []
        for outcome in batch {
            ids.append(outcome.step.id)
            tokens.append(outcome.step.leaseToken)
            switch outcome.result {
            case .success(let json):
                results.append(JSONText(json)); errors.append(nil); retries.append(nil)
            case .failure(let message, let retryAfter):
                results.append(nil); errors.append(message); retries.append(retryAfter)
            }
        }
        return "SELECT * FROM orcastra.report_steps(\(ids), \(tokens), \(results)::jsonb[], \(errors)::text[], \(retries)::bigint[])"
    }

    /// Whether the database refused the statement for what it holds (bad data, a constraint, a
    /// bug), as opposed to a passing fault: a lost connection, a deadlock or serialization victim,
    /// a cancelled statement, a server shutting down or short of resources.
    static func isRefusal(_ error: any Error) -> Bool {
        switch error as? PostgresError {
        case .server(let server):
            let transientClasses = ["08", "40", "53", "57", "58", "55"]
            return !transientClasses.contains(String(server.sqlState.prefix(2)))
        case .invalidParameter, .invalidIdentifier, .decoding:
            return true
        case .connectionFailed, .connectionLost, .noRows, nil:
            return false
        }
    }

    private func log(_ reply: QueryResult, batch: [StepOutcome]) {
        let byID = Dictionary(batch.map { ($0.step.id, $0) }, uniquingKeysWith: { first, _ in first })
        for row in reply {
            guard let id = try? row.decode("step_id", as: Int64.self), let outcome = try? row.decode("outcome", as: String.self),
                  let reported = byID[id] else { continue }
            let step = reported.step
            let metadata: Logger.Metadata = ["task": "\(step.taskID)", "step": "\(step.name)", "attempt": "\(step.attempt)"]
            switch ReportOutcome(rawValue: outcome) {
            case .completed: logger.debug("step complete", metadata: metadata)
            case .waitingForRetry, .error:
                if case .failure(let message, _) = reported.result {
                    logger.log(level: outcome == ReportOutcome.error.rawValue ? .error : .warning, "step attempt failed",
                               metadata: metadata.merging(["error": "\(message)", "next": "\(outcome)"]) { $1 })
                }
            case .ignored: logger.info("step outcome ignored: its task was cancelled", metadata: metadata)
            case .leaseLost, nil: logger.warning("step outcome refused: the lease was lost (the step may run elsewhere)", metadata: metadata)
            }
            if let taskState = try? row.decode("task_state", as: String?.self) {
                logger.log(level: taskState == TaskState.error.rawValue ? .error : .info, "task \(taskState)", metadata: ["task": "\(step.taskID)"])
            }
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
        let leases = state.leases
        guard !leases.isEmpty else { return }
        let sentAt = ContinuousClock.now
        do {
            let connection = try await heartbeatSlot.get()
            let rows = try await connection.query("""
                SELECT * FROM orcastra.heartbeat_steps(\(leases.map(\.stepID)), \(leases.map(\.token)), \(Int(configuration.lease.milliseconds))::int)
                """)
            var alive: [Int64: Bool] = [:]
            for row in rows { alive[try row.decode("step_id")] = try row.decode("alive") }
            for lease in state.heartbeatAnswered(leases, alive: alive, sentAt: sentAt) {
                handlers[lease]?.cancel()
                logger.info("step stopped: its task was cancelled or its lease lost", metadata: ["step_id": "\(lease.stepID)"])
                wake.yield()
            }
        } catch {
            logger.warning("heartbeat failed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: - Timeouts and fencing

    /// Cancels Swift handlers whose timeout passed, and stops every step whose lease could not be
    /// renewed in time (self-fencing: no attempt outlives its lease here, so none runs twice at
    /// once). Sleeps until the next deadline, checking at least every 100 ms while steps are held
    /// and every second when idle.
    private func deadlineLoop() async {
        while !Task.isCancelled {
            let now = ContinuousClock.now
            let expiry = state.expire(now: now)
            for lease in expiry.timedOut { handlers[lease]?.cancel() }
            for lease in expiry.fenced {
                handlers[lease]?.cancel()
                logger.error("stopped a step whose lease could not be renewed (the database did not answer heartbeats); it may run elsewhere",
                             metadata: ["step_id": "\(lease.stepID)"])
            }
            if !expiry.fenced.isEmpty { wake.yield() }
            let cap: Duration = state.isEmpty ? .seconds(1) : .milliseconds(100)
            let next = min(state.nextDeadline ?? now + cap, now + cap)
            try? await Task.sleep(until: max(next, now + .milliseconds(5)), clock: .continuous)
        }
    }

    // MARK: - Shutdown

    /// Graceful: claims nothing more, lets handlers finish and their outcomes be reported within the
    /// grace period, then stops the rest and hands their steps back. When the task was cancelled
    /// instead, there is no grace period.
    private func drain() async {
        shutdownFlag.set()
        let grace = Task.isCancelled ? Duration.zero : configuration.gracePeriod
        let deadline = ContinuousClock.now + grace
        state.beginDrain(deadline: deadline)
        wake.yield()  // the claim loop sees the drain and ends
        if !state.isEmpty {
            logger.info("shutting down: waiting for running steps to finish", metadata: ["steps": "\(state.leases.count)", "grace": "\(grace)"])
        }
        while !state.isEmpty, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let unfinished = state.abandonAll()
        guard !unfinished.isEmpty else { return }
        for lease in unfinished { handlers[lease]?.cancel() }
        // The hand-back must reach the database even when our task was cancelled.
        let slot = reportSlot
        let logger = logger
        await Task {
            do {
                let connection = try await slot.get()
                let handedBack = try await connection.query("""
                    SELECT * FROM orcastra.release_steps(\(unfinished.map(\.stepID)), \(unfinished.map(\.token)))
                    """).count
                logger.info("handed back unfinished steps", metadata: ["steps": "\(handedBack)"])
            } catch {
                logger.error("could not hand back unfinished steps; they return when their leases expire", metadata: ["error": "\(error)"])
            }
        }.value
    }

    private func handBack(_ leases: [Lease]) async {
        for lease in leases { state.drop(lease) }
        do {
            let connection = try await reportSlot.get()
            _ = try await connection.query("SELECT * FROM orcastra.release_steps(\(leases.map(\.stepID)), \(leases.map(\.token)))")
        } catch {
            logger.error("could not hand back steps; they return when their leases expire", metadata: ["error": "\(error)"])
        }
    }
}

/// Templates by id, read once per worker: the definition tells a claimed step what to run.
actor TemplateCache {
    private let slot: ConnectionSlot
    private var templates: [Int64: WorkflowTemplate] = [:]

    init(slot: ConnectionSlot) { self.slot = slot }

    func template(_ id: Int64) async throws -> WorkflowTemplate {
        if let cached = templates[id] { return cached }
        let connection = try await slot.get()
        let text = try await connection.queryRow("SELECT definition FROM orcastra.templates WHERE id = \(id)").decode("definition", as: String.self)
        let template = try WorkflowTemplate(normalizedJSON: text)
        templates[id] = template
        return template
    }
}
