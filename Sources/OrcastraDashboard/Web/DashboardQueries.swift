import Foundation
import OrcastraPostgres

/// The dashboard's own reads, each bounded whatever the history holds: live work through the
/// partial indexes on live states, recent activity through the newest rows of the transition
/// log (its primary key, read backwards), never a scan of finished rows.
struct DashboardQueries: Sendable {
    let pool: PostgresPool

    /// How many of the newest step transitions the overview reads (backwards along the primary
    /// key) for its sparklines and recent failures: 10 minutes at 33 moves/s; a busier system's
    /// sparkline shows its latest part (the page says "last 10 minutes" as an upper bound).
    static let recentTransitions = 20_000

    /// A task by id, else by idempotency key (through the unique index, one probe per template
    /// scope); the newest when several templates used the key.
    func findTask(_ text: String) async throws -> UUID? {
        if let id = UUID(uuidString: text) {
            return try await pool.query("SELECT id FROM orcastra.tasks WHERE id = \(id)").first?.decode("id")
        }
        return try await pool.query("""
            SELECT t.id FROM (SELECT DISTINCT namespace || '/' || name AS scope FROM orcastra.templates) s
            JOIN orcastra.tasks t ON t.idempotency_scope = s.scope AND t.idempotency_key = \(text)
            ORDER BY t.created_at DESC LIMIT 1
            """).first?.decode("id")
    }

    struct NamespaceLoad {
        var namespace: String
        var enqueued = 0, running = 0, retrying = 0
        var oldestWaitingSeconds: Double?
        var liveWorkers = 0
        /// Steps finished per minute over the last 10 minutes, oldest first.
        var finishedPerMinute = [Int](repeating: 0, count: 10)
    }

    struct Failure {
        var time: Date
        var stepID: Int64
        var stepName: String
        var taskID: UUID
        var state: String
        var reason: String
    }

    /// Per namespace: live steps by state, the oldest waiting, live workers, and the sparkline.
    func namespaceLoads() async throws -> [NamespaceLoad] {
        var loads: [String: NamespaceLoad] = [:]
        // One branch per live state, each matching its partial index exactly (steps_claimable,
        // steps_leases, steps_retry_due): `state IN (…)` would scan the whole table.
        let live = try await pool.query("""
            SELECT x.namespace, x.state, count(*) AS n, extract(epoch FROM now() - min(x.since))::float8 AS oldest
            FROM (SELECT s.namespace, s.state, coalesce(s.enqueued_at, s.visible_at) AS since FROM orcastra.steps s WHERE s.state = 'enqueued'
                  UNION ALL
                  SELECT s.namespace, s.state, s.visible_at FROM orcastra.steps s WHERE s.state = 'in_progress'
                  UNION ALL
                  SELECT s.namespace, s.state, s.visible_at FROM orcastra.steps s WHERE s.state = 'waiting_for_retry') x
            GROUP BY x.namespace, x.state
            """)
        for row in live {
            let namespace: String = try row.decode("namespace")
            var load = loads[namespace] ?? NamespaceLoad(namespace: namespace)
            let count: Int = try row.decode("n")
            switch try row.decode("state", as: String.self) {
            case "enqueued":
                load.enqueued = count
                load.oldestWaitingSeconds = try row.decode("oldest", as: Double?.self)
            case "in_progress": load.running = count
            default: load.retrying = count
            }
            loads[namespace] = load
        }
        for row in try await pool.query("SELECT namespace, count(*) AS n FROM orcastra.worker_status WHERE NOT stale GROUP BY namespace") {
            let namespace: String = try row.decode("namespace")
            loads[namespace, default: NamespaceLoad(namespace: namespace)].liveWorkers = try row.decode("n")
        }
        let recent = try await pool.query("""
            SELECT s.namespace, (extract(epoch FROM now() - st.created_at)::int8 / 60) AS minutes_ago, count(*) AS n
            FROM (SELECT x.step_id, x.to_state, x.created_at FROM orcastra.step_transitions x
                  ORDER BY x.id DESC LIMIT \(Self.recentTransitions)) st
            JOIN orcastra.steps s ON s.id = st.step_id
            WHERE st.to_state = 'complete' AND st.created_at > now() - interval '10 minutes'
            GROUP BY 1, 2
            """)
        for row in recent {
            let namespace: String = try row.decode("namespace")
            let minutesAgo: Int = try row.decode("minutes_ago")
            guard (0..<10).contains(minutesAgo) else { continue }
            loads[namespace, default: NamespaceLoad(namespace: namespace)].finishedPerMinute[9 - minutesAgo] += try row.decode("n", as: Int.self)
        }
        return loads.values.sorted { $0.namespace < $1.namespace }
    }

    /// The newest moves of steps into error or waiting for retry.
    func recentFailures(limit: Int = 10) async throws -> [Failure] {
        try await pool.query("""
            SELECT st.created_at, st.step_id, s.name, st.task_id, st.to_state, coalesce(st.metadata ->> 'error', st.reason) AS reason
            FROM (SELECT x.id, x.created_at, x.step_id, x.task_id, x.to_state, x.reason, x.metadata FROM orcastra.step_transitions x
                  ORDER BY x.id DESC LIMIT \(Self.recentTransitions)) st
            JOIN orcastra.steps s ON s.id = st.step_id
            WHERE st.to_state IN ('error', 'waiting_for_retry')
            ORDER BY st.id DESC
            LIMIT \(limit)
            """).map { row in
            Failure(time: try row.decode("created_at"), stepID: try row.decode("step_id"), stepName: try row.decode("name"),
                    taskID: try row.decode("task_id"), state: try row.decode("to_state"), reason: try row.decode("reason"))
        }
    }
}
