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

/// Creates tasks through `orcastra.create_task` (Migrations/functions/create_task.sql): the task,
/// all its steps, their edges and the first audit rows in one statement, so a task exists wholly
/// or not at all, and any language can submit the same way through SQL alone.
///
/// A task that starts now is initialized right there: its root steps are enqueued and their
/// namespaces notified at commit, so a worker can start the first step without waiting for an
/// orchestrator. Scheduled tasks stay `pending` until an orchestrator starts them.
///
/// What the SQL function does not do stays here, before anything is sent: the context's size
/// limit, what jsonb cannot store, and the template's input schema.
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
        let statement = Self.createStatement(request, context: JSONText(contextJSON), templateID: stored.id)
        // No row only if the task holding the idempotency key vanished twice over; never in practice.
        guard let row = try await pool.query(statement).first else { throw PostgresError.noRows(statement: statement.text) }
        return TaskCreation(taskID: try row.decode("task_id"), created: try row.decode("created"),
                            templateReference: template.reference)
    }

    static func createStatement(_ request: TaskRequest, context: JSONText, templateID: Int64) -> SQL {
        """
        SELECT task_id, created FROM orcastra.create_task(\(templateID)::bigint, \(context)::jsonb, \(request.idempotencyKey)::text,
                                                          \(request.priority)::integer, \(request.runAt)::timestamptz)
        """
    }
}
