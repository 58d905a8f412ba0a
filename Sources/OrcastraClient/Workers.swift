import Foundation
import OrcastraPostgres

/// A worker process as the registry knows it (`orcastra.worker_status`): what
/// `orcastra worker list` prints.
public struct WorkerInfo: Sendable, Hashable, Codable {
    /// The worker's name: its steps' lease owner, and the `worker` of `orcastra step show`.
    public var id: String
    public var namespace: String
    public var host: String
    public var pid: Int
    public var version: String
    public var concurrency: Int
    /// Steps it held (claimed, outcome not yet reported) at its last beat.
    public var runningSteps: Int
    /// How often it promised to beat.
    public var heartbeatIntervalSeconds: Double
    public var startedAt: Date
    public var lastSeenAt: Date
    /// Since its last beat, by the database's clock (so a client's clock cannot skew it).
    public var secondsSinceLastSeen: Double
    /// Not heard from for three beats, or 30 s if that is longer: killed, or cut off from the
    /// database. Its row is pruned after a day.
    public var stale: Bool

    enum CodingKeys: String, CodingKey {
        case id, namespace, host, pid, version, concurrency, stale
        case runningSteps = "running_steps", heartbeatIntervalSeconds = "heartbeat_interval_seconds"
        case startedAt = "started_at", lastSeenAt = "last_seen_at", secondsSinceLastSeen = "seconds_since_last_seen"
    }

    /// For values read elsewhere (the HTTP API's client).
    public init(id: String, namespace: String, host: String, pid: Int, version: String, concurrency: Int, runningSteps: Int,
                heartbeatIntervalSeconds: Double, startedAt: Date, lastSeenAt: Date, secondsSinceLastSeen: Double, stale: Bool) {
        self.id = id
        self.namespace = namespace
        self.host = host
        self.pid = pid
        self.version = version
        self.concurrency = concurrency
        self.runningSteps = runningSteps
        self.heartbeatIntervalSeconds = heartbeatIntervalSeconds
        self.startedAt = startedAt
        self.lastSeenAt = lastSeenAt
        self.secondsSinceLastSeen = secondsSinceLastSeen
        self.stale = stale
    }
}

/// A namespace where steps are queued and no live worker is registered: nothing will run them
/// until a worker of that namespace starts.
public struct UnservedNamespace: Sendable, Hashable, Codable {
    public var namespace: String
    /// Steps of every task that wait in it (`enqueued`).
    public var enqueuedSteps: Int

    /// What to run to serve it.
    public var startCommand: String { "orcastra-worker --namespace \(namespace)" }

    enum CodingKeys: String, CodingKey {
        case namespace, enqueuedSteps = "enqueued_steps"
    }

    /// For values read elsewhere (the HTTP API's client).
    public init(namespace: String, enqueuedSteps: Int) {
        self.namespace = namespace
        self.enqueuedSteps = enqueuedSteps
    }
}

// The worker registry (docs/worker-protocol.md#the-worker-registry), read-only: workers keep it.
extension OrcastraClient {
    /// Registered workers by namespace, then id: the live ones, and with `includeStale` also those
    /// that stopped beating (killed, or cut off from the database) within the last day.
    ///
    /// - Throws: `ClientError.registryMissing` on a database migrated by an older Orcastra.
    public func workers(namespace: String? = nil, includeStale: Bool = false) async throws -> [WorkerInfo] {
        var conditions: [SQL] = []
        if let namespace { conditions.append("w.namespace = \(namespace)") }
        if !includeStale { conditions.append("NOT w.stale") }
        var whereClause: SQL = ""
        for (index, condition) in conditions.enumerated() {
            whereClause.append(index == 0 ? "WHERE " : " AND ")
            whereClause.append(condition)
        }
        let rows = try await registryQuery("""
            SELECT w.id, w.namespace, w.host, w.pid::int8 AS pid, w.version, w.concurrency::int8 AS concurrency,
                   w.running_steps::int8 AS running_steps, w.heartbeat_ms::float8 / 1000 AS heartbeat_seconds,
                   w.started_at, w.last_seen_at, extract(epoch FROM now() - w.last_seen_at)::float8 AS seconds_since, w.stale
            FROM orcastra.worker_status w
            \(whereClause)
            ORDER BY w.namespace, w.id
            """)
        return try rows.map { row in
            WorkerInfo(
                id: try row.decode("id"), namespace: try row.decode("namespace"), host: try row.decode("host"),
                pid: try row.decode("pid"), version: try row.decode("version"), concurrency: try row.decode("concurrency"),
                runningSteps: try row.decode("running_steps"), heartbeatIntervalSeconds: try row.decode("heartbeat_seconds"),
                startedAt: try row.decode("started_at"), lastSeenAt: try row.decode("last_seen_at"),
                secondsSinceLastSeen: max(0, try row.decode("seconds_since", as: Double.self)), stale: try row.decode("stale"))
        }
    }

    /// Namespaces with queued steps and no live worker, with how many steps wait in each (all
    /// tasks), by name; only `namespace` when given. Reads the queue (orcastra.step_queue), not the steps.
    public func unservedNamespaces(namespace: String? = nil) async throws -> [UnservedNamespace] {
        let filter: SQL = namespace.map { "AND q.namespace = \($0)" } ?? ""
        let rows = try await registryQuery("""
            SELECT q.namespace, count(*) AS enqueued_steps
            FROM orcastra.step_queue q
            WHERE true \(filter)
              AND NOT EXISTS (SELECT 1 FROM orcastra.worker_status w WHERE w.namespace = q.namespace AND NOT w.stale)
            GROUP BY q.namespace
            ORDER BY q.namespace
            """)
        return try rows.map { UnservedNamespace(namespace: try $0.decode("namespace"), enqueuedSteps: try $0.decode("enqueued_steps")) }
    }

    /// Of `namespaces`, those that no live worker serves.
    public func namespacesWithoutLiveWorker(_ namespaces: Set<String>) async throws -> Set<String> {
        guard !namespaces.isEmpty else { return [] }
        let rows = try await registryQuery("""
            SELECT n.namespace FROM unnest(\(namespaces.sorted())::text[]) AS n(namespace)
            WHERE NOT EXISTS (SELECT 1 FROM orcastra.worker_status w WHERE w.namespace = n.namespace AND NOT w.stale)
            """)
        return Set(try rows.map { try $0.decode("namespace", as: String.self) })
    }

    /// The queued steps of `task` that no live worker can take, by namespace (sorted): what
    /// `orcastra task show` warns about. Empty when every queued step's namespace has a live worker.
    public func stepsWithoutLiveWorker(in task: TaskDetail) async throws -> [(namespace: String, steps: [StepDetail])] {
        let queued = Dictionary(grouping: task.queuedSteps, by: \.namespace)
        let unserved = try await namespacesWithoutLiveWorker(Set(queued.keys))
        return unserved.sorted().map { ($0, queued[$0] ?? []) }
    }

    private func registryQuery(_ sql: SQL) async throws -> QueryResult {
        do {
            return try await pool.query(sql)
        } catch let error as PostgresError where error.meansSchemaNotMigrated {
            // The rest of the schema may be there: say what is missing, not "no schema".
            if try await pool.query("SELECT to_regclass('orcastra.steps') IS NOT NULL AS migrated").first?.decode("migrated", as: Bool.self) == true {
                throw ClientError.registryMissing
            }
            throw error
        }
    }
}
