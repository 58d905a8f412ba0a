import CoreMetrics
import Synchronization

/// One metric Orcastra records: its Prometheus name, kind, HELP text and label names.
///
/// Every metric is recorded through swift-metrics (`Counter`, `Timer`, `Recorder`), so an embedder
/// may bootstrap any backend; `OrcastraPrometheus` exports them in the Prometheus text format and
/// takes the HELP texts and histogram buckets from here. Label values are always bounded (a
/// namespace, a handler or template name, a state, a SQLSTATE class), never a task or step id.
public struct MetricDefinition: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case counter, gauge, histogram
    }

    public let name: String
    public let kind: Kind
    public let help: String
    public let labels: [String]
    /// Histogram bucket upper bounds, in seconds (or the metric's base unit).
    public let buckets: [Double]

    public init(_ name: String, _ kind: Kind, labels: [String] = [], buckets: [Double] = [], help: String) {
        self.name = name
        self.kind = kind
        self.help = help
        self.labels = labels
        self.buckets = buckets
    }

    private func dimensions(_ values: [String]) -> [(String, String)] {
        precondition(values.count == labels.count, "\(name) takes the labels \(labels)")
        return Array(zip(labels, values))
    }

    /// Adds `amount` to a counter.
    public func increment(by amount: Int = 1, _ values: String...) {
        MetricHandles.shared.counter(self, values).increment(by: amount)
    }

    /// Records one observation of a histogram in seconds.
    public func observe(seconds: Double, _ values: String...) {
        MetricHandles.shared.timer(self, values).recordNanoseconds(Int64((max(0, seconds) * 1e9).rounded()))
    }

    /// Records one observation of a histogram.
    public func observe(_ duration: Duration, _ values: String...) {
        let (seconds, attoseconds) = duration.components
        MetricHandles.shared.timer(self, values).recordNanoseconds(max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
    }

    /// Sets a gauge.
    public func set(_ value: Double, _ values: String...) {
        MetricHandles.shared.gauge(self, values).record(value)
    }

    /// Sets a gauge, labels given as an array.
    public func set(_ value: Double, labelValues values: [String]) {
        MetricHandles.shared.gauge(self, values).record(value)
    }

    fileprivate func makeDimensions(_ values: [String]) -> [(String, String)] { dimensions(values) }
}

/// The handles made so far, by metric and label values: a step's few recordings each cost one
/// dictionary lookup instead of a trip through the backend's factory (swift-prometheus checks
/// every name, label and HELP text character by character on each make). Measured: a worker's
/// CPU per step (docs/benchmarks.md). Handles made before `MetricsSystem.bootstrap` stay no-ops,
/// as with any swift-metrics handle: bootstrap first.
final class MetricHandles: Sendable {
    static let shared = MetricHandles()

    struct Key: Hashable {
        var name: String
        var values: [String]
    }

    private let counters = Mutex<[Key: CoreMetrics.Counter]>([:])
    private let timers = Mutex<[Key: CoreMetrics.Timer]>([:])
    private let gauges = Mutex<[Key: CoreMetrics.Gauge]>([:])

    func counter(_ metric: MetricDefinition, _ values: [String]) -> CoreMetrics.Counter {
        counters.withLock { cache in
            let key = Key(name: metric.name, values: values)
            if let handle = cache[key] { return handle }
            let handle = CoreMetrics.Counter(label: metric.name, dimensions: metric.makeDimensions(values))
            cache[key] = handle
            return handle
        }
    }

    func timer(_ metric: MetricDefinition, _ values: [String]) -> CoreMetrics.Timer {
        timers.withLock { cache in
            let key = Key(name: metric.name, values: values)
            if let handle = cache[key] { return handle }
            let handle = CoreMetrics.Timer(label: metric.name, dimensions: metric.makeDimensions(values))
            cache[key] = handle
            return handle
        }
    }

    func gauge(_ metric: MetricDefinition, _ values: [String]) -> CoreMetrics.Gauge {
        gauges.withLock { cache in
            let key = Key(name: metric.name, values: values)
            if let handle = cache[key] { return handle }
            let handle = CoreMetrics.Gauge(label: metric.name, dimensions: metric.makeDimensions(values))
            cache[key] = handle
            return handle
        }
    }
}
