import Foundation
import Tracing
import W3CTraceContext

/// The W3C trace context a task is submitted under (docs/tracing.md): the `traceparent` header
/// value `00-<trace id>-<parent span id>-<flags>`. Every step attempt of the task becomes a span
/// of that trace, a child of that parent.
public enum Traceparent {
    /// The value as stored (lowercased), or nil when it is not a W3C traceparent.
    public static func normalized(_ value: String) -> String? {
        let lowered = value.trimmingCharacters(in: .whitespaces).lowercased()
        guard (try? TraceContext(traceParentHeaderValue: lowered)) != nil else { return nil }
        return lowered
    }

    /// The traceparent of the caller's current span (swift-distributed-tracing's
    /// `ServiceContext.current`), when a tracer is bootstrapped and a span is active; else nil.
    public static func ofCurrentContext() -> String? {
        guard let context = ServiceContext.current else { return nil }
        let tracer = InstrumentationSystem.tracer
        if tracer is NoOpTracer { return nil }
        var headers: [String: String] = [:]
        tracer.inject(context, into: &headers, using: HeaderCarrier())
        return headers["traceparent"].flatMap(normalized)
    }
}

private struct HeaderCarrier: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
}
