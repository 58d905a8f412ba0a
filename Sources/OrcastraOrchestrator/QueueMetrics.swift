import Foundation
import OrcastraMetrics
import OrcastraPostgres

/// The queue as the database holds it, for `/metrics`: steps per namespace and live state, the
/// age of the oldest enqueued step per namespace, and live workers per namespace. One statement,
/// on the live-step tables (step_queue, step_leases, step_retries: only live rows, however long the
/// history), run at most once per `maximumAge` however often
/// Prometheus (or several) scrape; a scrape in between sees the last answer.
///
/// A namespace or state that drops out of the answer is set to 0, not left at its last value.
public actor QueueMetrics {
    public let maximumAge: Duration
    private var refreshedAt: ContinuousClock.Instant?
    private var depthKeys: Set<[String]> = []
    private var namespaces: Set<String> = []

    public init(maximumAge: Duration = .seconds(1)) {
        self.maximumAge = maximumAge
    }

    /// Refreshes the gauges if the last refresh is older than `maximumAge`.
    public func refreshIfStale(_ pool: PostgresPool) async throws {
        if let refreshedAt, ContinuousClock.now - refreshedAt < maximumAge { return }
        let rows = try await pool.query(Self.statement)
        refreshedAt = .now
        var depth: [[String]: Double] = [:]
        var oldest: [String: Double] = [:]
        var workers: [String: Double] = [:]
        for row in rows {
            let namespace: String = try row.decode("namespace")
            let value: Double = try row.decode("value")
            switch try row.decode("kind", as: String.self) {
            case "steps":
                depth[[namespace, try row.decode("state", as: String.self)]] = value
                if let age = try row.decode("oldest", as: Double?.self) { oldest[namespace] = age }
            default:
                workers[namespace] = value
            }
        }
        depthKeys.formUnion(depth.keys)
        namespaces.formUnion(depth.keys.map { $0[0] })
        namespaces.formUnion(workers.keys)
        for key in depthKeys { OrcastraMetric.queueDepth.set(depth[key] ?? 0, labelValues: key) }
        for namespace in namespaces {
            OrcastraMetric.oldestEnqueued.set(oldest[namespace] ?? 0, namespace)
            OrcastraMetric.liveWorkers.set(workers[namespace] ?? 0, namespace)
        }
    }

    static let statement: SQL = """
        SELECT 'steps' AS kind, q.namespace, 'enqueued' AS state, count(*)::float8 AS value,
               extract(epoch FROM now() - min(q.enqueued_at))::float8 AS oldest
        FROM orcastra.step_queue q GROUP BY q.namespace
        UNION ALL
        SELECT 'steps', l.namespace, 'in_progress', count(*)::float8, NULL FROM orcastra.step_leases l GROUP BY l.namespace
        UNION ALL
        SELECT 'steps', r.namespace, 'waiting_for_retry', count(*)::float8, NULL FROM orcastra.step_retries r GROUP BY r.namespace
        UNION ALL
        SELECT 'workers', w.namespace, NULL, count(*)::float8, NULL
        FROM orcastra.workers w
        WHERE w.last_seen_at >= now() - orcastra.worker_stale_after(w.heartbeat_ms)
        GROUP BY w.namespace
        """
}
