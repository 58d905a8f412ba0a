import Foundation
import Logging
import OrcastraPostgres
import OrcastraStateMachines
import OrcastraTemplates
import Tracing

// Running handlers: one task per attempt, off the actor; only the bookkeeping comes back to it.
extension Worker {
    /// Runs one attempt in its own task, off the actor: reading the input, the handler, checking
    /// and serializing the result. Only the bookkeeping at the end comes back to the actor.
    nonisolated func execute(_ step: ClaimedStep) async {
        var stepLogger = logger
        stepLogger[metadataKey: "task"] = "\(step.taskID.uuidString.lowercased())"
        stepLogger[metadataKey: "step"] = "\(step.name)"
        for (key, value) in step.trace.logMetadata { stepLogger[metadataKey: key] = value }
        // Spans a handler makes are children of the attempt's, and a metadata provider such as
        // swift-otel's sees the attempt's trace (docs/tracing.md).
        guard let span = step.trace.span else { return await runAttempt(step, logger: stepLogger) }
        await ServiceContext.$current.withValue(span.context) {
            await runAttempt(step, logger: stepLogger)
        }
    }

    private nonisolated func runAttempt(_ step: ClaimedStep, logger stepLogger: Logger) async {
        var step = step
        var policy: RetryPolicy?
        let result: StepOutcome.Result
        do {
            let template = try await templates.template(step.templateID)
            step.templateLabel = template.name
            guard let definition = template.step(named: step.definitionName) else {
                metrics.claimed(step)
                throw StepFailure.permanent("template \(template.reference) has no step \(step.definitionName)")
            }
            step.handlerLabel = definition.action.metricsLabel
            metrics.claimed(step)
            policy = definition.retry
            let input = try step.input()
            var context = StepContext(taskID: step.taskID, stepID: step.id, stepName: step.name, attempt: step.attempt, maxAttempts: step.maxAttempts,
                                      taskContext: input.handlerInput, parents: input.parents ?? [:], item: input.item, index: input.index,
                                      logger: stepLogger, shutdown: shutdownFlag, traceparent: step.trace.traceparent)
            context.receivedContext = input.context != nil
            context.receivedParents = input.parents != nil
            step.trace.event("handler started")
            let timeout = Duration.milliseconds(definition.timeout.milliseconds)
            switch try await perform(definition, step: step, input: input, context: context, timeout: timeout) {
            case .value(let value):
                result = try Self.storable(value, limits: configuration.limits)
            case .settledInTransaction(let end):
                metrics.ran(step)
                metrics.reported(end.outcome, step: step)
                await settledInTransaction(step, end)
                return
            }
        } catch let failure as StepFailure {
            result = Self.failure(failure, step: step, policy: policy)
        } catch let timeout as CommandTimedOut {
            metrics.timedOut(step)
            result = Self.failure(.retryable(timeout.message), step: step, policy: policy)
        } catch is CancellationError {
            switch await cancellationReason(step.lease) {
            case .abandoned:
                step.trace.end(outcome: "abandoned", error: "the attempt was abandoned: its lease was lost, its task cancelled, or the worker stopped")
                await handlerGone(step.lease)
                return
            case .timedOut(let limit):
                metrics.timedOut(step)
                let message = "the handler timed out after \(TemplateDuration(milliseconds: limit.milliseconds))"
                result = Self.failure(.retryable(message), step: step, policy: policy)
            }
        } catch {
            result = Self.failure(.retryable("\(error)"), step: step, policy: policy)
        }
        step.trace.event("handler finished")
        metrics.ran(step)
        await finish(StepOutcome(step: step, result: result))
    }

    /// How an attempt's handler ended.
    enum Performed: Sendable {
        /// A result, to be checked and reported.
        case value(JSONValue)
        /// A transactional handler's step was settled in its own transaction: `report_steps` said
        /// `completed` (and the transaction committed), or `lease_lost` / `ignored` (and it rolled
        /// back). Nothing is left to report.
        case settledInTransaction(TransactionEnd)
    }

    /// How a transactional step's own transaction ended.
    struct TransactionEnd: Sendable {
        /// `report_steps`'s answer: `completed` (committed), `lease_lost` or `ignored` (rolled back).
        var outcome: String
        /// Steps claimed in the same transaction, into the slot this one freed (and any others
        /// free), as the report path does: one commit for both.
        var claimed: QueryResult?
        var reserved = 0
        var sentAt = ContinuousClock.now
    }

    nonisolated func perform(_ definition: StepDefinition, step: ClaimedStep,
                                     input: StepInput,
                                     context: StepContext, timeout: Duration) async throws -> Performed {
        switch definition.action {
        case .command(let spec):
            let stdin = input.document
            return .value(try await CommandStep.run(spec, input: stdin, step: context, timeout: timeout, limits: configuration.limits))
        case .workflow(let reference):
            // The database runs these (a child task); claim_steps never hands one out.
            throw StepFailure.permanent("step \(definition.name) is a sub-workflow (workflow: \(reference)): the database runs it as a child task, no worker does")
        case .handler(let name):
            guard let handler = registry.handler(named: name) else {
                throw StepFailure.retryable("no handler named \(name) is registered in worker \(configuration.workerID) (namespace \(configuration.namespace)); it has: \(registry.names.joined(separator: ", "))")
            }
            // The deadline loop cancels it when its timeout passes.
            await handlerStarted(step.lease, timeout: timeout)
            switch handler {
            case .plain(let run):
                return .value(try await run(input.handlerInput, context))
            case .transactional(let run):
                return .settledInTransaction(try await runInTransaction(run, name: name, step: step, input: input.handlerInput, context: context))
            }
        }
    }

    /// Runs a `TransactionalStepHandler` in a transaction on a pooled connection of its own, then
    /// completes the step with `complete_step_in_transaction` (`report_steps` for this step, which
    /// checks the lease token and locks the step, its children and then the task, in the usual
    /// order) in the same transaction, and commits only if that completed it. The step's row is locked only for that last statement and the
    /// COMMIT: while the handler runs, the heartbeats (on another connection) do not wait for it.
    ///
    /// Returns `report_steps`'s outcome when the step was settled here (`completed`, committed;
    /// or `lease_lost` / `ignored`, rolled back). Throws — after rolling back — when the handler
    /// failed or was cancelled; the failure is then reported like any other, in a new transaction.
    nonisolated func runInTransaction(_ run: HandlerRegistry.ErasedTransactional, name: String, step: ClaimedStep,
                                      input: JSONValue, context: StepContext) async throws -> TransactionEnd {
        let limits = configuration.limits
        return try await transactionPool.withConnection { connection in
            try await connection.execute("BEGIN")
            var reserved = 0
            do {
                let value = try await run(input, context, StepTransaction(connection: connection))
                switch await connection.transactionStatus {
                case .inTransaction: break
                case .failedTransaction:
                    throw StepFailure.retryable("a statement of handler \(name) failed and the handler went on: the step's transaction was aborted")
                default:
                    throw StepFailure.permanent("handler \(name) ended the step's transaction itself (COMMIT or ROLLBACK): the step cannot be completed together with its writes")
                }
                guard case .success(let json) = try Self.storable(value, limits: limits) else {
                    throw StepFailure.permanent("result not storable")
                }
                // Complete the step, refill the slot it frees (as the report path does; a claim
                // never waits) and commit, in one round trip: complete_step_in_transaction raises
                // OR005 unless report_steps completed the step, and then the pipeline skips the
                // rest and the transaction rolls back. A worker that let go of the step (lease
                // lost, fenced, shutting down past its grace period) cancelled this task, which
                // stops it here before anything is sent. Should the COMMIT's fate be unknown,
                // steps claimed here are owned by nobody until their leases run out and an
                // orchestrator recovers them.
                reserved = await reserveRefill()
                var statements: [SQL] = ["""
                    SELECT orcastra.complete_step_in_transaction(\(step.id), \(step.leaseToken), \(JSONText(json))::jsonb) AS outcome
                    """]
                if reserved > 0 { statements.append(claimStatement(limit: reserved)) }
                statements.append("COMMIT")
                let sentAt = ContinuousClock.now
                let replies: [QueryResult]
                do {
                    try Task.checkCancellation()
                    replies = try await connection.pipeline(statements)
                } catch let error as PostgresError where error.sqlState == OrcastraSQLState.stepNotCompleted.rawValue {
                    if reserved > 0 { await releaseReservation(reserved) }
                    reserved = 0
                    try? await connection.executeSimple("ROLLBACK")
                    var outcome = ReportOutcome.leaseLost.rawValue
                    if case .server(let server) = error, let detail = server.detail { outcome = detail }
                    if outcome == ReportOutcome.ignored.rawValue {
                        // The rollback took back the step's cancellation too: record it on its own
                        // (any outcome of a cancelled task's step cancels the step).
                        let cancelled = StepOutcome(step: step, result: .failure(message: "task cancelled while running", retryAfterMilliseconds: nil))
                        _ = try? await connection.query(Self.reportStatement([cancelled]))
                    }
                    return TransactionEnd(outcome: outcome)
                }
                return TransactionEnd(outcome: ReportOutcome.completed.rawValue, claimed: reserved > 0 ? replies[1] : nil,
                                      reserved: reserved, sentAt: sentAt)
            } catch {
                if reserved > 0 { await releaseReservation(reserved) }
                if !connection.isBroken { try? await connection.executeSimple("ROLLBACK") }
                // A statement cancelled for a timeout or a lost lease fails with 57014: the cause
                // is the cancellation, which execute() turns into the right report (or none).
                if Task.isCancelled { throw CancellationError() }
                throw error
            }
        }
    }

    /// The result as JSON text, or a permanent failure saying why it cannot be stored.
    static func storable(_ value: JSONValue, limits: ResultLimits) throws -> StepOutcome.Result {
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

    static func failure(_ failure: StepFailure, step: ClaimedStep, policy: RetryPolicy?) -> StepOutcome.Result {
        switch failure {
        case .permanent(let message):
            return .failure(message: Storable.errorMessage(message), retryAfterMilliseconds: nil)
        case .retryable(let message):
            let delay = policy?.delay(afterAttempt: step.attempt, random: Double.random(in: 0..<1)).milliseconds ?? 0
            return .failure(message: Storable.errorMessage(message), retryAfterMilliseconds: delay)
        }
    }

    func handlerStarted(_ lease: Lease, timeout: Duration) {
        state.setHandlerTimeout(lease, timeout, now: .now)
    }

    func cancellationReason(_ lease: Lease) -> WorkerState.CancellationReason {
        state.cancellationReason(lease)
    }

    /// Slots a transactional step's transaction may claim into when it completes its step (its
    /// own slot, which frees at the commit, and any others free).
    func reserveRefill() -> Int {
        state.reserveRefill(freeing: 1)
    }

    func releaseReservation(_ count: Int) {
        state.releaseReservation(count)
    }

    /// A transactional step was completed in its own transaction, or found to be no longer ours
    /// there: it leaves its slot without a report, and the steps claimed in that transaction start.
    func settledInTransaction(_ step: ClaimedStep, _ end: TransactionEnd) async {
        handlers[step.lease] = nil
        state.drop(step.lease)
        let metadata = step.logMetadata
        step.trace.end(outcome: end.outcome,
                       error: end.outcome == ReportOutcome.leaseLost.rawValue ? "the lease was lost: the step may run elsewhere" : nil)
        switch ReportOutcome(rawValue: end.outcome) {
        case .completed: logger.debug("step complete (in its handler's transaction)", metadata: metadata)
        case .ignored: logger.info("step rolled back: its task was cancelled", metadata: metadata)
        default: logger.warning("step rolled back: the lease was lost (the step may run elsewhere)", metadata: metadata)
        }
        if let claimed = end.claimed {
            let count = await accept(claimed, reserved: end.reserved, sentAt: end.sentAt)
            if count == end.reserved { wake.yield() }  // a full batch: there may be more
        } else {
            wake.yield()  // a slot freed
        }
    }

    func handlerGone(_ lease: Lease) {
        handlers[lease] = nil
    }

    func finish(_ outcome: StepOutcome) {
        handlers[outcome.step.lease] = nil
        if state.handlerFinished(outcome) { reportWake.yield() }
    }
}
