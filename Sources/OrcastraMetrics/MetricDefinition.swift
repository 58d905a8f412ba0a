import CoreMetrics

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
        CoreMetrics.Counter(label: name, dimensions: dimensions(values)).increment(by: amount)
    }

    /// Records one observation of a histogram in seconds.
    public func observe(seconds: Double, _ values: String...) {
        CoreMetrics.Timer(label: name, dimensions: dimensions(values))
            .recordNanoseconds(Int64((max(0, seconds) * 1e9).rounded()))
    }

    /// Records one observation of a histogram.
    public func observe(_ duration: Duration, _ values: String...) {
        let (seconds, attoseconds) = duration.components
        CoreMetrics.Timer(label: name, dimensions: dimensions(values))
            .recordNanoseconds(max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
    }

    /// Sets a gauge.
    public func set(_ value: Double, _ values: String...) {
        CoreMetrics.Gauge(label: name, dimensions: dimensions(values)).record(value)
    }

    /// Sets a gauge, labels given as an array.
    public func set(_ value: Double, labelValues values: [String]) {
        CoreMetrics.Gauge(label: name, dimensions: dimensions(values)).record(value)
    }
}
