import CoreMetrics
import OrcastraMetrics
import Prometheus
import Synchronization

/// The process's Prometheus export: a swift-metrics backend over swift-prometheus's registry that
/// gives each of Orcastra's metrics (`OrcastraMetric`) its HELP text and histogram buckets.
/// (swift-prometheus' own factory registers every metric with an empty HELP.) Metrics of other
/// libraries pass through with swift-prometheus' defaults.
public struct PrometheusExport: Sendable {
    public let registry: PrometheusCollectorRegistry

    /// The export every process bootstraps at most once (`bootstrap()`).
    public static let shared = PrometheusExport(registry: PrometheusCollectorRegistry())
    private static let bootstrapped = Mutex(false)

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    /// Makes `shared` the swift-metrics backend of this process (once; later calls do nothing).
    /// Until then every metric goes to swift-metrics' no-op backend, which costs next to nothing.
    public static func bootstrap() {
        let first = bootstrapped.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        MetricsSystem.bootstrap(OrcastraMetricsFactory(registry: shared.registry))
    }

    /// The exposition text (`text/plain; version=0.0.4`).
    public func exposition() -> String {
        registry.emitToString()
    }

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}

struct OrcastraMetricsFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    let fallback: PrometheusMetricsFactory

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        fallback = PrometheusMetricsFactory(registry: registry)
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        guard let metric = OrcastraMetric.named(label) else { return fallback.makeCounter(label: label, dimensions: dimensions) }
        return registry.makeCounter(descriptor: metric.descriptor, labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        guard let metric = OrcastraMetric.named(label) else { return fallback.makeFloatingPointCounter(label: label, dimensions: dimensions) }
        return registry.makeCounter(descriptor: metric.descriptor, labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard let metric = OrcastraMetric.named(label) else {
            return fallback.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
        }
        if aggregate {
            return registry.makeValueHistogram(descriptor: metric.descriptor, labels: dimensions, buckets: metric.buckets)
        }
        return registry.makeGauge(descriptor: metric.descriptor, labels: dimensions)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        guard let metric = OrcastraMetric.named(label) else { return fallback.makeMeter(label: label, dimensions: dimensions) }
        return registry.makeGauge(descriptor: metric.descriptor, labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        guard let metric = OrcastraMetric.named(label) else { return fallback.makeTimer(label: label, dimensions: dimensions) }
        let buckets = metric.buckets.map { Duration.nanoseconds(Int64(($0 * 1e9).rounded())) }
        return registry.makeDurationHistogram(descriptor: metric.descriptor, labels: dimensions, buckets: buckets)
    }

    func destroyCounter(_ handler: any CounterHandler) { fallback.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { fallback.destroyFloatingPointCounter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { fallback.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { fallback.destroyMeter(handler) }
    func destroyTimer(_ handler: any TimerHandler) { fallback.destroyTimer(handler) }
}

extension MetricDefinition {
    /// The full name as swift-prometheus' descriptor, with the HELP text.
    var descriptor: MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}
