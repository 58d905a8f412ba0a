import Foundation
import Logging
import OrcastraPostgres
import OrcastraStateMachines
import OrcastraTemplates

// Running handlers: one task per attempt, off the actor; only the bookkeeping comes back to it.
extension Worker {
    /// Runs one attempt in its own task, off the actor: reading the input, the handler, checking
    /// and serializing the result. Only the bookkeeping at the end comes back to the actor.
    nonisolated func execute(_ step: ClaimedStep) async {
        var stepLogger = logger
        stepLogger[metadataKey: "task"] = "\(step.taskID.uuidString.lowercased())"
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

    nonisolated func perform(_ definition: StepDefinition, step: ClaimedStep,
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

    func handlerGone(_ lease: Lease) {
        handlers[lease] = nil
    }

    func finish(_ outcome: StepOutcome) {
        handlers[outcome.step.lease] = nil
        if state.handlerFinished(outcome) { reportWake.yield() }
    }
}
