import Foundation
import OrcastraPostgres
import OrcastraTemplates

/// What a client asks for when it submits a task.
public struct TaskRequest: Sendable {
    public var template: TemplateReference
    public var context: JSONValue
    /// A second submission with the same key returns the first task instead of making another.
    public var idempotencyKey: String?
    /// Higher runs first when workers are busy.
    public var priority: Int
    /// Start no earlier than this; nil starts at once.
    public var runAt: Date?

    public init(template: TemplateReference, context: JSONValue = .object([:]), idempotencyKey: String? = nil,
                priority: Int = 0, runAt: Date? = nil) {
        self.template = template
        self.context = context
        self.idempotencyKey = idempotencyKey
        self.priority = priority
        self.runAt = runAt
    }
}

public struct TaskCreation: Sendable, Equatable {
    public var taskID: UUID
    /// False when an idempotency key matched an existing task.
    public var created: Bool
    public var templateReference: String
}

/// Creates tasks: the task, all its steps, their edges and the first audit rows in one statement,
/// so a task exists wholly or not at all.
///
/// A task that starts now is initialized right here: its root steps are enqueued and their
/// namespaces notified at commit, so a worker can start the first step without waiting for an
/// orchestrator. Scheduled tasks stay `pending` until an orchestrator starts them.
public struct TaskCreator: Sendable {
    public let pool: PostgresPool
    public let registry: TemplateRegistry

    public init(pool: PostgresPool) {
        self.pool = pool
        registry = TemplateRegistry(pool: pool)
    }

    public func create(_ request: TaskRequest) async throws -> TaskCreation {
        let stored = try await registry.find(request.template)
        return try await create(request, from: stored)
    }

    /// Creates a task from an already fetched template (callers that submit many tasks reuse it).
    public func create(_ request: TaskRequest, from stored: StoredTemplate) async throws -> TaskCreation {
        let template = stored.template
        // Before anything is sent: jsonb would refuse a NUL half-way with SQLSTATE 22P05.
        if let reason = request.context.unstorableReason() {
            throw StoreError.contextUnstorable(reason: reason)
        }
        // Serialized once: measured against the limit here, stored as is below.
        let contextJSON = request.context.jsonText
        let contextBytes = contextJSON.utf8.count
        if contextBytes > StoreLimits.maximumContextBytes {
            throw StoreError.contextTooLarge(bytes: contextBytes, limit: StoreLimits.maximumContextBytes)
        }
        if let schema = template.inputSchema {
            let violations = schema.validate(request.context)
            if !violations.isEmpty {
                throw StoreError.contextInvalid(template: template.reference, violations: violations)
            }
        }
        let statement = Self.insertStatement(request, context: JSONText(contextJSON), template: template, templateID: stored.id)
        if let row = try await pool.query(statement).first, let id = try row.decode("id", as: UUID?.self) {
            return TaskCreation(taskID: id, created: true, templateReference: template.reference)
        }
        // Only an idempotency-key conflict inserts nothing.
        guard let key = request.idempotencyKey else { throw PostgresError.noRows(statement: statement.text) }
        let existing = try await pool.query("SELECT id FROM orcastra.tasks WHERE idempotency_key = \(key)")
        guard let row = existing.first else { throw PostgresError.noRows(statement: "idempotent task lookup") }
        return TaskCreation(taskID: try row.decode("id"), created: false, templateReference: template.reference)
    }

    static func insertStatement(_ request: TaskRequest, context: JSONText, template: WorkflowTemplate, templateID: Int64) -> SQL {
        let steps = template.steps
        let names = steps.map(\.name)
        let namespaces = steps.map(\.namespace)
        let maxAttempts = steps.map { $0.retry.maxAttempts }
        let parentCounts = steps.map { $0.dependsOn.count }
        let edgeParents = steps.flatMap { step in step.dependsOn }
        let edgeChildren = steps.flatMap { step in step.dependsOn.map { _ in step.name } }
        return """
            WITH task AS (
                INSERT INTO orcastra.tasks (template_id, state, priority, idempotency_key, context, run_at, started_at)
                SELECT \(templateID), starts.state, \(request.priority), \(request.idempotencyKey), \(context),
                       coalesce(\(request.runAt), now()), CASE WHEN starts.state = 'in_progress' THEN now() END
                FROM (SELECT CASE WHEN coalesce(\(request.runAt), now()) <= now() THEN 'in_progress' ELSE 'pending' END AS state) AS starts
                ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING id, state
            ), task_audit AS (
                INSERT INTO orcastra.task_transitions (task_id, from_state, to_state, reason)
                SELECT id, NULL, state, 'created' FROM task
            ), new_steps AS (
                INSERT INTO orcastra.steps (task_id, name, namespace, state, priority, max_attempts, pending_parents, enqueued_at)
                SELECT task.id, s.name, s.namespace, ready.state, \(request.priority), s.max_attempts, s.parents,
                       CASE WHEN ready.state = 'enqueued' THEN now() END
                FROM task
                CROSS JOIN unnest(\(names)::text[], \(namespaces)::text[], \(maxAttempts)::int[], \(parentCounts)::int[])
                    AS s(name, namespace, max_attempts, parents)
                CROSS JOIN LATERAL (SELECT CASE WHEN task.state = 'in_progress' AND s.parents = 0
                                                THEN 'enqueued' ELSE 'pending' END AS state) AS ready
                RETURNING id, task_id, name, namespace, state
            ), step_audit AS (
                INSERT INTO orcastra.step_transitions (step_id, task_id, from_state, to_state, attempt, reason)
                SELECT id, task_id, NULL, state, 0, 'created' FROM new_steps
            ), edges AS (
                INSERT INTO orcastra.step_edges (parent_id, child_id)
                SELECT parent.id, child.id
                FROM unnest(\(edgeParents)::text[], \(edgeChildren)::text[]) AS e(parent, child)
                JOIN new_steps AS parent ON parent.name = e.parent
                JOIN new_steps AS child ON child.name = e.child
            ), woken AS (
                SELECT pg_notify(orcastra.namespace_channel(namespace), '')
                FROM (SELECT DISTINCT namespace FROM new_steps WHERE state = 'enqueued') AS ready_namespaces
            )
            SELECT (SELECT id FROM task) AS id, (SELECT count(*) FROM woken) AS woken
            """
    }
}
