import Foundation
import OrcastraPostgres
import OrcastraStateMachines
import OrcastraStore
import OrcastraTemplates

/// Submit, watch, inspect and repair tasks: the library the `orcastra` CLI is built on.
///
/// Everything goes through PostgreSQL — there is no server to talk to — so a client is just a
/// connection pool plus the queries and SQL functions that make up Orcastra's operator surface.
/// Operator actions (cancel, retry, resolve) call the SQL functions of the migrations rather than
/// updating rows here, so every client, whatever its language, applies them the same way.
///
/// A client is cheap to copy and safe to share between tasks. Call ``shutdown()`` when done, or
/// the pool's idle connections stay open until the process exits.
public struct OrcastraClient: Sendable {
    public let pool: PostgresPool

    /// - Parameters:
    ///   - conninfo: a `postgresql://` URL or libpq `key=value` string ("" reads libpq's `PG*` variables).
    ///   - maximumConnections: the pool's size. A watcher also holds one listening connection of its own.
    public init(conninfo: String, maximumConnections: Int = 4) {
        pool = PostgresPool(conninfo: conninfo, maximumConnections: maximumConnections)
    }

    /// Shares a pool the caller already has (and shuts down itself).
    public init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Closes the pool's connections.
    public func shutdown() async {
        await pool.shutdown()
    }

    // MARK: - Submit

    /// Creates a task: validates the context against the template's input schema, then writes the
    /// task with all its steps in one statement. With an idempotency key used before for the same
    /// template (`namespace/name`, any version), the earlier task is returned (`created == false`,
    /// its own template in `templateReference`, `contextDiffers` when its context is another) and
    /// nothing new is made. A reference without a version takes the default version, else the
    /// highest release that is not deprecated (``TemplateVersionRule``).
    ///
    /// - Throws: `StoreError.templateNotFound` (with the closest names), `StoreError.contextInvalid`,
    ///   `StoreError.templateDeprecated` for a deprecated version without `allowDeprecated`.
    public func submit(_ request: TaskRequest) async throws -> TaskCreation {
        try await TaskCreator(pool: pool).create(request)
    }

    /// Submits inside the caller's own transaction: the task exists if and only if that
    /// transaction commits, and workers are woken at its commit, never before and never for a
    /// rollback. Use it to save your own rows and start their workflow atomically:
    ///
    /// ```swift
    /// try await connection.withTransaction { connection in
    ///     try await connection.execute("INSERT INTO shop.orders (id, total) VALUES (\(id), \(total))")
    ///     _ = try await client.submit(TaskRequest(template: "shop/fulfil", context: ["order": .string(id)]), in: connection)
    /// }
    /// ```
    ///
    /// The same checks as ``submit(_:)`` run before anything is sent (input schema, size, what
    /// jsonb cannot store). Inside a `TransactionalStepHandler`, pass `transaction.connection`: the
    /// new task then exists only if the step completes. Any other driver does the same with
    /// `SELECT * FROM orcastra.create_task(…)` between its `BEGIN` and `COMMIT`
    /// (docs/transactions.md).
    ///
    /// - Throws: `StoreError.notInTransaction` when `connection` is not inside an open transaction
    ///   (autocommit, or a failed transaction), and the errors of ``submit(_:)``.
    public func submit(_ request: TaskRequest, in connection: isolated PostgresConnection) async throws -> TaskCreation {
        try await TaskCreator(pool: pool).create(request, in: connection)
    }

    /// Submits with any `Encodable` context, e.g. a struct of the workflow's input.
    public func submit<Context: Encodable>(
        _ template: TemplateReference, context: Context, idempotencyKey: String? = nil,
        priority: Int = 0, runAt: Date? = nil, allowDeprecated: Bool = false
    ) async throws -> TaskCreation {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = try JSONValue(parsing: String(decoding: try encoder.encode(context), as: UTF8.self))
        return try await submit(TaskRequest(template: template, context: json, idempotencyKey: idempotencyKey,
                                            priority: priority, runAt: runAt, allowDeprecated: allowDeprecated))
    }

    // MARK: - Inspect

    /// The task and its whole DAG, read in one statement so the states agree with each other.
    ///
    /// - Throws: `StoreError.taskNotFound` for an unknown id.
    public func task(_ id: UUID) async throws -> TaskDetail {
        let rows = try await pool.query("""
            SELECT t.id, t.state, t.state_reason, t.priority, t.idempotency_key, t.traceparent, t.context::text AS context,
                   t.run_at, t.created_at, t.started_at, t.finished_at, t.error,
                   tp.namespace AS template_namespace, tp.name AS template_name, tp.version AS template_version,
                   t.parent_task_id::text AS parent_task_id, t.parent_step_id,
                   (SELECT ps.name FROM orcastra.steps ps WHERE ps.id = t.parent_step_id) AS parent_step_name,
                   coalesce((
                       SELECT jsonb_agg(jsonb_build_object(
                                  'id', s.id, 'name', s.name, 'namespace', s.namespace, 'state', s.state,
                                  'state_reason', s.state_reason, 'attempts', s.attempts, 'max_attempts', s.max_attempts,
                                  'started_at', s.started_at, 'finished_at', s.finished_at,
                                  'duration_seconds', extract(epoch FROM s.finished_at - s.started_at),
                                  'last_error', s.last_error, 'result', r.result,
                                  'workflow', s.workflow, 'child_task_id', s.child_task_id,
                                  'depends_on', coalesce((SELECT jsonb_agg(p.name ORDER BY p.id)
                                                          FROM orcastra.step_links e JOIN orcastra.steps p ON p.id = e.parent_id
                                                          WHERE e.child_id = s.id), '[]'::jsonb))
                              ORDER BY s.id)
                       FROM orcastra.steps s LEFT JOIN orcastra.step_results r ON r.step_id = s.id
                       WHERE s.task_id = t.id), '[]'::jsonb)::text AS steps
            FROM orcastra.tasks t JOIN orcastra.templates tp ON tp.id = t.template_id
            WHERE t.id = \(id)
            """)
        guard let row = rows.first else { throw StoreError.taskNotFound(id.uuidString.lowercased()) }
        let namespace: String = try row.decode("template_namespace")
        let name: String = try row.decode("template_name")
        let version: String = try row.decode("template_version")
        return TaskDetail(
            id: try row.decode("id"),
            template: "\(namespace)/\(name)@\(version)",
            templateNamespace: namespace,
            templateName: name,
            templateVersion: version,
            state: try Self.taskState(try row.decode("state")),
            stateReason: try row.decode("state_reason"),
            priority: try row.decode("priority", as: Int.self),
            idempotencyKey: try row.decode("idempotency_key"),
            traceparent: try row.decode("traceparent"),
            context: try JSONValue(parsing: try row.decode("context", as: String.self)),
            runAt: try row.decode("run_at"),
            createdAt: try row.decode("created_at"),
            startedAt: try row.decode("started_at"),
            finishedAt: try row.decode("finished_at"),
            error: try row.decode("error"),
            steps: try Self.decodeSteps(try row.decode("steps", as: String.self)),
            parentTaskID: try row.decode("parent_task_id"),
            parentStepID: try row.decode("parent_step_id"),
            parentStepName: try row.decode("parent_step_name")
        )
    }

    /// Tasks newest first, narrowed by `filter`; page with `filter.after = lastRow.cursor`.
    public func tasks(filter: TaskFilter = TaskFilter()) async throws -> [TaskSummary] {
        var conditions: [SQL] = []
        if let namespace = filter.namespace { conditions.append("tp.namespace = \(namespace)") }
        if let name = filter.templateName { conditions.append("tp.name = \(name)") }
        if !filter.states.isEmpty {
            conditions.append("t.state = ANY (\(filter.states.map(\.rawValue).sorted())::text[])")
        }
        if let after = filter.createdAfter { conditions.append("t.created_at >= \(after)") }
        if let before = filter.createdBefore { conditions.append("t.created_at < \(before)") }
        if let cursor = filter.after {
            conditions.append("""
                (t.created_at, t.id) < (timestamptz 'epoch' + \(cursor.createdAtMicroseconds) * interval '1 microsecond', \(cursor.id))
                """)
        }
        var whereClause: SQL = ""
        for (index, condition) in conditions.enumerated() {
            whereClause.append(index == 0 ? "WHERE " : " AND ")
            whereClause.append(condition)
        }
        let limit = min(max(filter.limit, 1), 1000)
        let rows = try await pool.query("""
            SELECT t.id, t.state, t.priority, t.created_at, t.started_at, t.finished_at, t.error,
                   -- Whole seconds and microseconds apart: exact on every version, where extract(epoch) is a float8 before PostgreSQL 14.
                   extract(epoch FROM date_trunc('second', t.created_at))::int8 * 1000000
                       + extract(microseconds FROM t.created_at)::int8 % 1000000 AS created_micros,
                   tp.namespace, tp.name, tp.version,
                   (SELECT count(*) FROM orcastra.steps s WHERE s.task_id = t.id) AS step_count,
                   (SELECT count(*) FROM orcastra.steps s
                    WHERE s.task_id = t.id AND s.state IN ('complete', 'resolved_manually', 'skipped')) AS finished_step_count
            FROM orcastra.tasks t JOIN orcastra.templates tp ON tp.id = t.template_id
            \(whereClause)
            ORDER BY t.created_at DESC, t.id DESC
            LIMIT \(limit)
            """)
        return try rows.map { row in
            let id: UUID = try row.decode("id")
            let namespace: String = try row.decode("namespace")
            let name: String = try row.decode("name")
            let version: String = try row.decode("version")
            return TaskSummary(
                id: id,
                template: "\(namespace)/\(name)@\(version)",
                templateNamespace: namespace,
                templateName: name,
                state: try Self.taskState(try row.decode("state")),
                priority: try row.decode("priority", as: Int.self),
                createdAt: try row.decode("created_at"),
                startedAt: try row.decode("started_at"),
                finishedAt: try row.decode("finished_at"),
                stepCount: try row.decode("step_count", as: Int.self),
                finishedStepCount: try row.decode("finished_step_count", as: Int.self),
                error: try row.decode("error"),
                cursor: TaskCursor(createdAtMicroseconds: try row.decode("created_micros"), id: id)
            )
        }
    }

    /// The task's log: its own transitions and its steps', merged in the order they happened.
    ///
    /// Creation rows come first (they are written by one statement, in no defined order), then by
    /// time, task before step, and the log's own id (which orders the moves of one transaction).
    /// With `step`, only that step's moves (what `orcastra step show` reads). Read through the
    /// task's row: a pruned task's history stays in its week's partition until the week is
    /// dropped (docs/retention.md), and its creation time names that partition.
    public func events(_ id: UUID, step: Int64? = nil) async throws -> [TransitionEvent] {
        let rows = try await pool.query("""
            WITH owner AS MATERIALIZED (SELECT t.id, t.created_at FROM orcastra.tasks t WHERE t.id = \(id))
            SELECT x.* FROM (
                SELECT tt.created_at, 'task' AS kind, NULL::bigint AS step_id, NULL::text AS step_name,
                       tt.from_state, tt.to_state, tt.reason, NULL::int AS attempt, tt.metadata::text AS metadata,
                       tt.id AS log_id, 0 AS kind_order
                FROM owner o JOIN orcastra.task_transitions tt ON tt.task_id = o.id AND tt.task_created_at = o.created_at
                WHERE \(step)::bigint IS NULL
                UNION ALL
                SELECT st.created_at, 'step', st.step_id, s.name,
                       st.from_state, st.to_state, st.reason, st.attempt, st.metadata::text,
                       st.id, 1
                FROM owner o JOIN orcastra.step_transitions st ON st.task_id = o.id AND st.task_created_at = o.created_at
                JOIN orcastra.steps s ON s.id = st.step_id
                WHERE \(step)::bigint IS NULL OR st.step_id = \(step)
            ) x
            ORDER BY x.from_state IS NOT NULL, CASE WHEN x.from_state IS NULL THEN x.kind_order END, x.created_at, x.kind_order, x.log_id
            """)
        if rows.isEmpty {
            // A task always has at least its creation row; no rows means no task.
            throw StoreError.taskNotFound(id.uuidString.lowercased())
        }
        return try rows.map { row in
            TransitionEvent(
                time: try row.decode("created_at"),
                kind: try row.decode("kind", as: String.self) == "task" ? .task : .step,
                stepID: try row.decode("step_id"),
                stepName: try row.decode("step_name"),
                from: try row.decode("from_state"),
                to: try row.decode("to_state"),
                reason: try row.decode("reason"),
                attempt: try row.decode("attempt", as: Int?.self),
                metadata: try row.decode("metadata", as: String?.self).map { try JSONValue(parsing: $0) }
            )
        }
    }

    /// One step with every attempt it made (worker, times, outcome, error) and its transitions.
    ///
    /// - Throws: `ClientError.stepNotFound` for an unknown id.
    public func step(_ id: Int64) async throws -> StepHistory {
        guard let row = try await pool.query("SELECT task_id FROM orcastra.steps WHERE id = \(id)").first else {
            throw ClientError.stepNotFound(id)
        }
        let detail = try await task(try row.decode("task_id"))
        guard let step = detail.steps.first(where: { $0.id == id }) else { throw ClientError.stepNotFound(id) }
        let transitions = try await events(detail.id, step: id)
        return StepHistory(taskID: detail.id, template: detail.template, step: step, transitions: transitions)
    }

    // MARK: - Repair

    /// Cancels a task: steps not yet running are cancelled at once, running ones when their worker
    /// next reports. Cancelling a finished task changes nothing.
    ///
    /// - Returns: the task's state afterwards: `cancelled`, or the terminal state it already had.
    /// - Throws: `StoreError.taskNotFound`.
    @discardableResult
    public func cancel(_ id: UUID, reason: String = "cancelled by an operator") async throws -> TaskState {
        let row = try await pool.query("SELECT orcastra.cancel_task(\(id), \(reason)) AS state").first
        guard let state = try row?.decode("state", as: String?.self) else {
            throw StoreError.taskNotFound(id.uuidString.lowercased())
        }
        return try Self.taskState(state)
    }

    /// Declares a task done by hand: it becomes `resolved_manually`; its unfinished steps are
    /// resolved (their result is JSON null) or, if queued, cancelled. Resolving a finished task
    /// changes nothing.
    ///
    /// - Returns: the task's state afterwards: `resolved_manually`, or the terminal state it had.
    /// - Throws: `StoreError.taskNotFound`, or `ClientError.taskActionRefused` while a step runs
    ///   or for a scheduled task.
    @discardableResult
    public func resolveTask(_ id: UUID, reason: String = "resolved by an operator") async throws -> TaskState {
        let row = try await taskAction("resolve", id, "SELECT orcastra.resolve_task(\(id), \(reason)) AS state")
        guard let state = try row?.decode("state", as: String?.self) else { throw StoreError.taskNotFound(id.uuidString.lowercased()) }
        return try Self.taskState(state)
    }

    /// Submits a new task with the same template version, context and priority as `id` (its
    /// idempotency key and start time are not copied). The context is checked again.
    public func rerun(_ id: UUID) async throws -> TaskCreation {
        let original = try await task(id)
        let version = try SemanticVersion(parsing: original.templateVersion)
        return try await submit(TaskRequest(
            template: TemplateReference(namespace: original.templateNamespace, name: original.templateName, version: version),
            context: original.context, priority: original.priority))
    }

    /// Puts a step in `error` back in line with a fresh retry budget; its task resumes.
    ///
    /// - Returns: the step's state afterwards (`enqueued`).
    /// - Throws: `ClientError.stepNotFound`, or `ClientError.stepActionRefused` for a step that is
    ///   not in error or whose task was cancelled.
    @discardableResult
    public func retryStep(_ stepID: Int64, reason: String = "retried by an operator") async throws -> StepState {
        try await stepAction(.retry, stepID) {
            "SELECT orcastra.retry_step(\(stepID), \(reason)) AS state"
        }
    }

    /// Puts every step of the task that is in `error` back in line with a fresh retry budget, at
    /// once; the task resumes.
    ///
    /// - Returns: how many steps were retried.
    /// - Throws: `StoreError.taskNotFound`, or `ClientError.taskActionRefused` for a task that is
    ///   cancelled or finished, or has no failed step.
    @discardableResult
    public func retryTask(_ id: UUID, reason: String = "retried by an operator") async throws -> Int {
        let row = try await taskAction("retry", id, "SELECT orcastra.retry_task(\(id), \(reason)) AS retried")
        guard let count = try row?.decode("retried", as: Int?.self) else { throw StoreError.taskNotFound(id.uuidString.lowercased()) }
        return count
    }

    /// Supplies a step's result by hand: it becomes `resolved_manually` and its children run as if
    /// it had completed with `result`.
    ///
    /// - Throws: `ClientError.stepNotFound`, or `ClientError.stepActionRefused` for a step that is
    ///   queued, running or finished.
    @discardableResult
    public func resolveStep(_ stepID: Int64, result: JSONValue, reason: String = "resolved by an operator") async throws -> StepState {
        if let problem = result.unstorableReason() {
            throw ClientError.unstorableJSON(source: "The result for step \(stepID)", reason: problem)
        }
        return try await stepAction(.resolve, stepID) {
            "SELECT orcastra.resolve_step(\(stepID), \(JSONText(result.jsonText)), \(reason)) AS state"
        }
    }

    /// Runs an operator action on a whole task; the database's refusal (SQLSTATE OR002) becomes
    /// `ClientError.taskActionRefused`. Returns the statement's one row.
    private func taskAction(_ action: String, _ id: UUID, _ statement: SQL) async throws -> PostgresRow? {
        do {
            return try await pool.query(statement).first
        } catch let error as PostgresError {
            if case .server(let server) = error, server.sqlState == OrcastraSQLState.refusedOperatorAction.rawValue {
                throw ClientError.taskActionRefused(task: id, action: action, reason: server.message)
            }
            throw error
        }
    }

    private func stepAction(_ action: ClientError.StepAction, _ stepID: Int64, _ statement: () -> SQL) async throws -> StepState {
        let row: PostgresRow?
        do {
            row = try await pool.query(statement()).first
        } catch let error as PostgresError {
            if case .server(let server) = error, server.sqlState == OrcastraSQLState.refusedOperatorAction.rawValue {
                throw ClientError.stepActionRefused(step: stepID, action: action, reason: server.message)
            }
            throw error
        }
        guard let state = try row?.decode("state", as: String?.self) else { throw ClientError.stepNotFound(stepID) }
        guard let parsed = StepState(rawValue: state) else {
            throw PostgresError.decoding(column: "state", type: .text, value: state, reason: "not a step state")
        }
        return parsed
    }

    // MARK: - Decoding

    static func taskState(_ text: String) throws -> TaskState {
        guard let state = TaskState(rawValue: text) else {
            throw PostgresError.decoding(column: "state", type: .text, value: text, reason: "not a task state")
        }
        return state
    }

    /// The steps come as one jsonb array (one statement for the whole DAG); timestamps in it are
    /// PostgreSQL's JSON form, which `Date(postgresText:)` reads.
    static func decodeSteps(_ json: String) throws -> [StepDetail] {
        guard case .array(let items) = try JSONValue(parsing: json) else { return [] }
        return try items.map { item in
            guard case .object(let fields) = item else { throw PostgresDecodingFailure("a step is not an object") }
            func string(_ key: String) -> String? {
                if case .string(let value)? = fields[key] { return value }
                return nil
            }
            func int(_ key: String) -> Int64? {
                switch fields[key] {
                case .number(let value)?: return value.int64Value
                default: return nil
                }
            }
            func date(_ key: String) throws -> Date? {
                try string(key).map { try Date(postgresText: $0, type: .timestamptz) }
            }
            let duration: Double? = switch fields["duration_seconds"] {
            case .number(let value)?: value.doubleValue
            default: nil
            }
            let result: JSONValue? = switch fields["result"] {
            case nil, .null?: nil
            case let value?: value
            }
            var parents: [String] = []
            if case .array(let names)? = fields["depends_on"] {
                parents = names.compactMap { if case .string(let name) = $0 { name } else { nil } }
            }
            guard let state = string("state").flatMap(StepState.init(rawValue:)) else {
                throw PostgresDecodingFailure("a step has no known state")
            }
            return StepDetail(
                id: int("id") ?? 0,
                name: string("name") ?? "",
                namespace: string("namespace") ?? "",
                state: state,
                stateReason: string("state_reason") ?? "",
                attempts: Int(int("attempts") ?? 0),
                maxAttempts: Int(int("max_attempts") ?? 0),
                startedAt: try date("started_at"),
                finishedAt: try date("finished_at"),
                durationSeconds: duration,
                lastError: string("last_error"),
                result: result,
                dependsOn: parents,
                workflow: string("workflow"),
                childTaskID: string("child_task_id")
            )
        }
    }
}
