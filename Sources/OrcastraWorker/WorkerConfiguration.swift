import Foundation

/// How a worker runs; every field has a safe default except the database and the namespace.
public struct WorkerConfiguration: Sendable {
    public var conninfo: String
    /// The worker pool this worker serves: it claims only steps of this namespace.
    public var namespace: String
    /// Names this worker in leases and logs; unique per process by default.
    public var workerID: String
    /// How many handlers run at once.
    public var concurrency: Int = 10
    /// The most steps one claim takes.
    public var claimBatch: Int = 10
    /// How long a claim holds a step without a heartbeat; heartbeats come every third of it.
    /// A worker that dies loses its steps to others once this runs out.
    public var lease: Duration = .seconds(30)
    /// How often the worker looks for work when no notification woke it.
    public var pollInterval: Duration = .seconds(1)
    /// On shutdown, how long running handlers may take to finish before they are handed back.
    public var gracePeriod: Duration = .seconds(30)
    public var limits = ResultLimits()

    public init(conninfo: String, namespace: String, workerID: String? = nil) {
        self.conninfo = conninfo
        self.namespace = namespace
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let hostname = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        self.workerID = workerID ?? "\(hostname)-\(getpid())-\(String(UInt32.random(in: 0..<UInt32.max), radix: 36))"
    }
}
