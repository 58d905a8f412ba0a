import Foundation
import Logging
import OTel
import ServiceLifecycle

/// Distributed tracing for the executables (docs/tracing.md): swift-otel exporting spans over
/// OTLP/HTTP, turned on only by the standard `OTEL_*` variables. Off, nothing is bootstrapped:
/// the engine's spans go to swift-distributed-tracing's no-op tracer and cost nothing.
public enum TracingSetup {
    /// Whether the environment asks for traces: `OTEL_EXPORTER_OTLP_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` set, or `OTEL_TRACES_EXPORTER` set to an exporter
    /// (`otlp`, `console`) — and `OTEL_SDK_DISABLED` not `true`.
    public static func isRequested(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        if environment["OTEL_SDK_DISABLED"]?.lowercased() == "true" { return false }
        if let exporter = environment["OTEL_TRACES_EXPORTER"]?.trimmingCharacters(in: .whitespaces).lowercased(), !exporter.isEmpty {
            return exporter != "none"
        }
        return [environment["OTEL_EXPORTER_OTLP_ENDPOINT"], environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]]
            .contains { !($0 ?? "").isEmpty }
    }

    /// What log handlers add to each record when tracing is on: `trace_id`, `span_id` and
    /// `trace_flags` of the span of the current task, if any. Nil when tracing is off.
    public static func loggingMetadataProvider(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Logger.MetadataProvider? {
        isRequested(environment) ? OTel.makeLoggingMetadataProvider() : nil
    }

    /// Bootstraps the tracer when the environment asks for it and returns the exporter's service,
    /// to run first in the process's service group (it is then shut down last and sends the spans
    /// still batched). Nil when tracing is off. Only spans: metrics and logs are not exported by
    /// swift-otel. `OTEL_SERVICE_NAME` overrides `serviceName`; the exporter speaks OTLP/HTTP
    /// (`http/protobuf`, or `http/json` with `OTEL_EXPORTER_OTLP_PROTOCOL`).
    public static func bootstrap(serviceName: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (any Service)? {
        guard isRequested(environment) else { return nil }
        var configuration = OTel.Configuration.default
        configuration.serviceName = serviceName
        configuration.diagnosticLogger = .custom(Logger(label: "orcastra.tracing"))
        configuration.traces.enabled = true
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        do {
            return try OTel.bootstrap(configuration: configuration, environment: environment)
        } catch {
            throw TracingSetupError(message: "tracing could not start from the OTEL_* variables: \(error) (docs/tracing.md lists the ones Orcastra reads)")
        }
    }
}

/// The `OTEL_*` variables ask for something that cannot be set up.
public struct TracingSetupError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
