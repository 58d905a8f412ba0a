import Foundation
import OrcastraStateMachines

/// How a worker runs; every field has a safe default except the database and the namespace.
public struct WorkerConfiguration: Sendable {
    public var conninfo: String
    /// Where the worker LISTENs, when not at `conninfo`: straight to PostgreSQL (or a session-mode
    /// pool) when `conninfo` goes through PgBouncer in transaction mode. Nil: `conninfo`, or
    /// `ORCASTRA_LISTEN_DATABASE_URL` when set.
    public var listenConninfo: String?
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
    /// The version this worker records in the registry (`orcastra worker list`). The stock worker
    /// reports Orcastra's; a worker of your own may report its own build (`"billing-worker 2.3"`).
    public var version: String = OrcastraVersion.current

    public init(conninfo: String, namespace: String, workerID: String? = nil) {
        self.conninfo = conninfo
        self.namespace = namespace
        self.workerID = workerID ?? "\(Self.hostname)-\(getpid())-\(String(UInt32.random(in: 0..<UInt32.max), radix: 36))"
    }

    /// How often the worker refreshes its registry row: with its step heartbeats (every third of
    /// the lease), but at least every 10 s so a long lease does not hide a dead worker for long, and
    /// at most every second so a short lease does not wake an idle worker often. A row is stale
    /// after three missed beats, or 30 s if that is longer (`orcastra.worker_stale_after`).
    var registryBeatInterval: Duration {
        min(max(lease / 3, .seconds(1)), .seconds(10))
    }

    /// This machine's name, as the registry and the default worker id show it.
    static var hostname: String {
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        return String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
