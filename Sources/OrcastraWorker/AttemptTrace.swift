import Logging
import Tracing

/// The trace of one step attempt (docs/tracing.md): a span from the claim through the handler to
/// the report, a child of the trace context the task was submitted under, made with the tracer
/// bootstrapped in `InstrumentationSystem` (by `orcastra-worker` from the `OTEL_*` variables, or
/// by an embedding program). Every attempt has a span of its own, so retries are siblings.
///
/// With no tracer bootstrapped nothing is made: no span, no metadata, and command steps get the
/// task's own traceparent, so a process that traces itself still joins the task's trace.
struct AttemptTrace: Sendable {
    /// Nil when tracing is off.
    var span: (any Span)?
    /// The W3C traceparent to hand on (`TRACEPARENT` of command steps, `StepContext.traceparent`):
    /// this attempt's span when there is one, else the task's.
    var traceparent: String?
    /// `trace_id` and `span_id` for the attempt's log lines, when there is a span.
    var logMetadata: Logger.Metadata = [:]

    static let none = AttemptTrace()

    /// Starts the attempt's span under `step`'s task trace context, or only hands the task's
    /// traceparent on when `tracer` is nil (tracing off).
    static func start(_ step: ClaimedStep, tracer: (any Tracer)?, namespace: String, workerID: String) -> AttemptTrace {
        guard let tracer else { return AttemptTrace(traceparent: step.taskTraceparent) }
        var parent = ServiceContext.topLevel
        if let traceparent = step.taskTraceparent {
            tracer.extract(["traceparent": traceparent], into: &parent, using: TraceHeaders())
        }
        let span = tracer.startSpan("step \(step.name)", context: parent, ofKind: .consumer)
        span.updateAttributes { attributes in
            attributes["orcastra.task.id"] = step.taskID.uuidString.lowercased()
            attributes["orcastra.step.id"] = step.id
            attributes["orcastra.step.name"] = step.name
            attributes["orcastra.step.attempt"] = step.attempt
            attributes["orcastra.step.max_attempts"] = step.maxAttempts
            attributes["orcastra.template.id"] = step.templateID
            attributes["orcastra.namespace"] = namespace
            attributes["orcastra.worker.id"] = workerID
        }
        var headers: [String: String] = [:]
        tracer.inject(span.context, into: &headers, using: TraceHeaders())
        let own = headers["traceparent"]
        var metadata: Logger.Metadata = [:]
        if let parts = own?.split(separator: "-"), parts.count == 4 {
            metadata["trace_id"] = "\(parts[1])"
            metadata["span_id"] = "\(parts[2])"
        }
        return AttemptTrace(span: span, traceparent: own ?? step.taskTraceparent, logMetadata: metadata)
    }

    /// Marks a point of the attempt (`handler started`, `handler finished`), when there is a span.
    func event(_ name: String) {
        span?.addEvent(SpanEvent(name: name))
    }

    /// Ends the span with the report's outcome (`completed`, `waiting_for_retry`, `error`,
    /// `ignored`, `lease_lost`, or what ended the attempt without a report); a failure's message
    /// is recorded as the span's error and status.
    func end(outcome: String, error: String? = nil) {
        guard let span else { return }
        span.attributes["orcastra.step.outcome"] = outcome
        if let error {
            span.recordError(StepAttemptError(message: error))
            span.setStatus(SpanStatus(code: .error, message: error))
        } else if outcome == "completed" {
            span.setStatus(SpanStatus(code: .ok))
        }
        span.end()
    }
}

/// A failed attempt's message, as the error recorded on its span (`exception.message`).
struct StepAttemptError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// W3C trace context headers in a dictionary, the carrier the tracer extracts from and injects into.
struct TraceHeaders: Extractor, Injector {
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
}
