import Foundation
import OrcastraPostgres
import OrcastraStateMachines
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
    /// Run a deprecated version. Only a pinned reference (`ns/name@1.0.0`) can: one without a
    /// version never takes a deprecated version, whatever this says.
    public var allowDeprecated: Bool
    /// The W3C `traceparent` the task's step attempts become spans under (docs/tracing.md). Nil
    /// takes the caller's current span when a tracer is bootstrapped, else a new trace.
    public var traceparent: String?

    public init(template: TemplateReference, context: JSONValue = .object([:]), idempotencyKey: String? = nil,
                priority: Int = 0, runAt: Date? = nil, allowDeprecated: Bool = false, traceparent: String? = nil) {
        self.traceparent = traceparent
        self.template = template
        self.context = context
        self.idempotencyKey = idempotencyKey
        self.priority = priority
        self.runAt = runAt
        self.allowDeprecated = allowDeprecated
    }
}

public struct TaskCreation: Sendable, Equatable {
    /// For values read elsewhere (the HTTP API's client, OrcastraAPIClient).
    public init(taskID: UUID, created: Bool, templateReference: String, contextDiffers: Bool) {
        self.taskID = taskID
        self.created = created
        self.templateReference = templateReference
        self.contextDiffers = contextDiffers
    }

    public var taskID: UUID
    /// False when an idempotency key matched an existing task (of the same template: keys are
    /// unique per `namespace/name`).
    public var created: Bool
    /// The task's own template, `namespace/name@version`: when a key matched, the version that
    /// task runs, which may not be the one asked for.
    public var templateReference: String
    /// A key matched a task whose context is not the one given (compared as jsonb: `1` equals
    /// `1.0`); the context given was not used.
    public var contextDiffers: Bool
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
        try await create(request, from: stored) { statement in try await Self.runNotifyingAfterCommit(statement, on: pool) }
    }

    /// Runs `statement` alone in a transaction whose notifications (the root steps' namespaces,
    /// the task's events) are sent after its commit, in a transaction of their own that waits for
    /// no flush: one pipeline (setting, statement, `take_notifications`), then
    /// `send_notifications` when there is anything to send (channels.sql, "Notifications sent
    /// after the commit"; issue 12). The caller's own transaction (`create(_:in:)`) keeps them at
    /// its commit.
    static func runNotifyingAfterCommit(_ statement: SQL, on pool: PostgresPool) async throws -> QueryResult {
        try await pool.withConnection { connection in
            let replies = try await connection.pipeline([
                "SELECT set_config('orcastra.notify_after_commit', 'on', true)",
                statement,
                "SELECT orcastra.take_notifications() AS pending",
            ])
            if let pending = try? replies[2].first?.decode("pending", as: String.self), !pending.isEmpty {
                // A hint: if it is lost with the connection, the workers' poll finds the task.
                _ = try? await connection.query("SELECT orcastra.send_notifications(\(pending)) AS sent")
            }
            return replies[1]
        }
    }

    /// Creates a task inside the caller's open transaction on `connection`: the task exists if and
    /// only if that transaction commits, and workers are notified at its commit (NOTIFY is
    /// transactional). The same checks as `create(_:)` run first (schema, size, what jsonb cannot
    /// store); the template itself is looked up through the pool, so it must be registered
    /// (committed) already.
    ///
    /// - Throws: `StoreError.notInTransaction` when `connection` is not inside an open, healthy
    ///   transaction block. If the database refuses the task (a deprecated version, say), the
    ///   caller's transaction is aborted, like after any failed statement: roll it back.
    public func create(_ request: TaskRequest, in connection: isolated PostgresConnection) async throws -> TaskCreation {
        switch connection.transactionStatus {
        case .inTransaction: break
        case .idle: throw StoreError.notInTransaction(status: "not in a transaction (autocommit)")
        case .failedTransaction: throw StoreError.notInTransaction(status: "in a failed transaction (a statement failed; roll it back)")
        case .active, .unknown: throw StoreError.notInTransaction(status: "busy or closed")
        }
        let stored = try await registry.find(request.template)
        return try await create(request, from: stored) { statement in try await connection.query(statement) }
    }

    private func create(_ request: TaskRequest, from stored: StoredTemplate,
                        run: @Sendable (SQL) async throws -> QueryResult) async throws -> TaskCreation {
        try await create(try Self.checked(request, from: stored), run: run)
    }

    /// Creates a task from a submission that passed ``checked(_:from:)``: one statement on the pool.
    public func create(_ submission: CheckedSubmission) async throws -> TaskCreation {
        try await create(submission) { statement in try await Self.runNotifyingAfterCommit(statement, on: pool) }
    }

    private func create(_ submission: CheckedSubmission,
                        run: @Sendable (SQL) async throws -> QueryResult) async throws -> TaskCreation {
        let stored = submission.stored
        let statement = Self.createStatement(submission.request, context: submission.context, templateID: stored.id)
        let row: PostgresRow?
        do {
            row = try await run(statement).first
        } catch let error as PostgresError {
            guard case .server(let server) = error,
                  let refusal = await refusal(sqlState: server.sqlState, message: server.message, submission) else { throw error }
            throw refusal
        }
        // No row only if the task holding the idempotency key vanished twice over; never in practice.
        guard let row else { throw PostgresError.noRows(statement: statement.text) }
        return TaskCreation(taskID: try row.decode("task_id"), created: try row.decode("created"),
                            templateReference: "\(stored.template.namespace)/\(stored.template.name)@\(try row.decode("template_version", as: String.self))",
                            contextDiffers: try row.decode("context_differs"))
    }

    /// A submission that passed the checks made before anything is sent: the context's size
    /// limit, what jsonb cannot store, the template's input schema, and the traceparent.
    public struct CheckedSubmission: Sendable {
        /// The request, its traceparent normalized (or the current span's).
        public var request: TaskRequest
        public var stored: StoredTemplate
        /// The context as it is stored, serialized once.
        public var context: JSONText
    }

    /// Runs the checks `create` makes before it sends anything; throws the same refusals.
    public static func checked(_ request: TaskRequest, from stored: StoredTemplate) throws -> CheckedSubmission {
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
        var request = request
        if let given = request.traceparent {
            guard let traceparent = Traceparent.normalized(given) else { throw StoreError.traceparentInvalid(given) }
            request.traceparent = traceparent
        } else {
            request.traceparent = Traceparent.ofCurrentContext()
        }
        return CheckedSubmission(request: request, stored: stored, context: JSONText(contextJSON))
    }

    /// The refusal `orcastra.create_task` raised for `submission`, as the error a person reads; nil
    /// for an error that is not one of its refusals.
    func refusal(sqlState: String, message: String, _ submission: CheckedSubmission) async -> StoreError? {
        let template = submission.stored.template
        switch sqlState {
        case OrcastraSQLState.templateDeprecated.rawValue:
            return await deprecated(template.reference, submission.stored)
        case OrcastraSQLState.concurrencyKeyMissing.rawValue:
            return .concurrencyKeyMissing(template: template.reference, key: template.concurrency?.key ?? "?")
        case OrcastraSQLState.workflowTemplateMissing.rawValue:
            return .workflowTemplateMissing(message: message)
        default:
            return nil
        }
    }

    /// The refusal of a deprecated version, as the registry holds it now (it may have been
    /// deprecated after `stored` was read).
    private func deprecated(_ reference: String, _ stored: StoredTemplate) async -> StoreError {
        let current = (try? await registry.find(TemplateReference(namespace: stored.template.namespace, name: stored.template.name,
                                                                    version: stored.template.version))) ?? stored
        return .templateDeprecated(reference: reference, since: current.deprecatedAt, reason: current.deprecationReason,
                                   unpinnedVersion: current.unpinnedVersion?.description)
    }

    static func createStatement(_ request: TaskRequest, context: JSONText, templateID: Int64) -> SQL {
        // A reference without a version never takes a deprecated one, even if one became so meanwhile.
        let allowDeprecated = request.allowDeprecated && request.template.version != nil
        return """
            SELECT task_id, created, template_version, context_differs
            FROM orcastra.create_task(\(templateID)::bigint, \(context)::jsonb, \(request.idempotencyKey)::text,
                                      \(request.priority)::integer, \(request.runAt)::timestamptz, \(allowDeprecated)::boolean,
                                      \(request.traceparent)::text)
            """
    }
}
