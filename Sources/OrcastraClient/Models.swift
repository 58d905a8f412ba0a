import Foundation
import OrcastraStateMachines
import OrcastraTemplates

/// One task as an operator sees it: its header and its whole DAG, in one value.
///
/// `TaskDetail` is a snapshot read in one statement, so the task's state and its steps' states are
/// consistent with each other. It is `Equatable` so watchers can tell whether anything changed.
public struct TaskDetail: Sendable, Hashable, Codable {
    public init(id: UUID, template: String, templateNamespace: String, templateName: String, templateVersion: String,
                state: TaskState, stateReason: String, priority: Int, idempotencyKey: String?, traceparent: String? = nil,
                context: JSONValue, runAt: Date, createdAt: Date, startedAt: Date?, finishedAt: Date?, error: String?,
                steps: [StepDetail], parentTaskID: String? = nil, parentStepID: Int64? = nil, parentStepName: String? = nil) {
        self.id = id
        self.template = template
        self.templateNamespace = templateNamespace
        self.templateName = templateName
        self.templateVersion = templateVersion
        self.state = state
        self.stateReason = stateReason
        self.priority = priority
        self.idempotencyKey = idempotencyKey
        self.traceparent = traceparent
        self.context = context
        self.runAt = runAt
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.error = error
        self.steps = steps
        self.parentTaskID = parentTaskID
        self.parentStepID = parentStepID
        self.parentStepName = parentStepName
    }

    @LowercaseUUID public var id: UUID
    /// `namespace/name@version` of the template the task runs.
    public var template: String
    /// The template's namespace (the task's "namespace" in filters).
    public var templateNamespace: String
    public var templateName: String
    public var templateVersion: String
    public var state: TaskState
    /// Why the task last changed state (e.g. `1 step failed; nothing else can run`).
    public var stateReason: String
    public var priority: Int
    @NullEncoded public var idempotencyKey: String?
    /// The W3C trace context the task was submitted under: its step attempts are spans of this
    /// trace (docs/tracing.md). Nil only for tasks made before migration 0008.
    @NullEncoded public var traceparent: String?
    public var context: JSONValue
    public var runAt: Date
    public var createdAt: Date
    @NullEncoded public var startedAt: Date?
    @NullEncoded public var finishedAt: Date?
    /// Set when the task is in `error`: the failed steps and their last errors.
    @NullEncoded public var error: String?
    /// In the template's order (which is also id order).
    public var steps: [StepDetail]
    /// For a sub-workflow task (docs/templates.md, "Sub-workflows"): the task, and the workflow step
    /// of it, that started this one; nil for a task submitted by a client or a schedule. (The other
    /// direction is each workflow step's `childTaskID`.)
    @NullEncoded public var parentTaskID: String?
    @NullEncoded public var parentStepID: Int64?
    @NullEncoded public var parentStepName: String?

    /// Complete, cancelled or resolved by hand: nothing will ever change again.
    public var isTerminal: Bool { state.isTerminal }

    /// Nothing runs any more without an operator: terminal, or `error`. A watcher stops here.
    ///
    /// `error` is not terminal (an operator can retry or resolve the failed step), but nothing else
    /// will happen on its own, so waiting longer would wait forever.
    public var isSettled: Bool { state.isTerminal || state == .error }

    /// Steps that are complete, were resolved by hand, or were skipped.
    public var finishedStepCount: Int { steps.filter { $0.state.satisfiesDependents || $0.state == .skipped }.count }

    /// Steps a worker holds right now.
    public var runningSteps: [StepDetail] { steps.filter { $0.state == .inProgress } }

    /// Steps queued for a worker of their namespace (`enqueued`).
    public var queuedSteps: [StepDetail] { steps.filter { $0.state == .enqueued } }

    /// Steps in `error`: what `orcastra step retry` or `step resolve` act on.
    public var failedSteps: [StepDetail] { steps.filter { $0.state == .error } }

    /// The trace id of `traceparent`: what to search a tracing backend for.
    public var traceID: String? {
        guard let parts = traceparent?.split(separator: "-"), parts.count == 4 else { return nil }
        return String(parts[1])
    }

    /// Wall time from start to finish (or to now, for a task that still runs).
    public func duration(now: Date = Date()) -> TimeInterval? {
        guard let startedAt else { return nil }
        return (finishedAt ?? now).timeIntervalSince(startedAt)
    }

    enum CodingKeys: String, CodingKey {
        case id, template, state, priority, context, error, steps
        case templateNamespace = "template_namespace", templateName = "template_name", templateVersion = "template_version"
        case parentTaskID = "parent_task_id", parentStepID = "parent_step_id", parentStepName = "parent_step_name"
        case stateReason = "state_reason", idempotencyKey = "idempotency_key", runAt = "run_at", traceparent
        case createdAt = "created_at", startedAt = "started_at", finishedAt = "finished_at"
    }
}

/// One step of a task: where it is, how often it ran, what it produced or why it failed.
public struct StepDetail: Sendable, Hashable, Codable {
    public init(id: Int64, name: String, namespace: String, state: StepState, stateReason: String, attempts: Int,
                maxAttempts: Int, startedAt: Date?, finishedAt: Date?, durationSeconds: Double?, lastError: String?,
                result: JSONValue?, dependsOn: [String], workflow: String? = nil, childTaskID: String? = nil) {
        self.id = id
        self.name = name
        self.namespace = namespace
        self.state = state
        self.stateReason = stateReason
        self.attempts = attempts
        self.maxAttempts = maxAttempts
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.durationSeconds = durationSeconds
        self.lastError = lastError
        self.result = result
        self.dependsOn = dependsOn
        self.workflow = workflow
        self.childTaskID = childTaskID
    }

    /// The id `orcastra step retry|resolve` take.
    public var id: Int64
    public var name: String
    /// The worker pool that runs it.
    public var namespace: String
    public var state: StepState
    public var stateReason: String
    public var attempts: Int
    public var maxAttempts: Int
    @NullEncoded public var startedAt: Date?
    @NullEncoded public var finishedAt: Date?
    /// Seconds from the start of the last attempt to the end, when both are known.
    @NullEncoded public var durationSeconds: Double?
    @NullEncoded public var lastError: String?
    /// The stored result (from the worker, or from an operator's resolve).
    @NullEncoded public var result: JSONValue?
    /// The names of its parents.
    public var dependsOn: [String]
    /// A sub-workflow step's template reference (`ns/name@version`), and the child task its last
    /// run started; nil for other steps.
    @NullEncoded public var workflow: String?
    @NullEncoded public var childTaskID: String?

    enum CodingKeys: String, CodingKey {
        case id, name, namespace, state, attempts, result
        case stateReason = "state_reason", maxAttempts = "max_attempts", startedAt = "started_at"
        case finishedAt = "finished_at", durationSeconds = "duration_seconds", lastError = "last_error"
        case dependsOn = "depends_on", workflow, childTaskID = "child_task_id"
    }
}

/// One row of a task listing: enough to pick a task, without its context or steps.
public struct TaskSummary: Sendable, Hashable, Codable {
    public init(id: UUID, template: String, templateNamespace: String, templateName: String, state: TaskState, priority: Int,
                createdAt: Date, startedAt: Date?, finishedAt: Date?, stepCount: Int, finishedStepCount: Int, error: String?,
                cursor: TaskCursor) {
        self.id = id
        self.template = template
        self.templateNamespace = templateNamespace
        self.templateName = templateName
        self.state = state
        self.priority = priority
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.stepCount = stepCount
        self.finishedStepCount = finishedStepCount
        self.error = error
        self.cursor = cursor
    }

    @LowercaseUUID public var id: UUID
    public var template: String
    public var templateNamespace: String
    public var templateName: String
    public var state: TaskState
    public var priority: Int
    public var createdAt: Date
    @NullEncoded public var startedAt: Date?
    @NullEncoded public var finishedAt: Date?
    public var stepCount: Int
    public var finishedStepCount: Int
    @NullEncoded public var error: String?
    /// Pass it as `TaskFilter.after` to get the page that follows this row.
    public var cursor: TaskCursor

    enum CodingKeys: String, CodingKey {
        case id, template, state, priority, error, cursor
        case templateNamespace = "template_namespace", templateName = "template_name"
        case createdAt = "created_at", startedAt = "started_at", finishedAt = "finished_at"
        case stepCount = "step_count", finishedStepCount = "finished_step_count"
    }
}

/// A position in the newest-first task listing: `(created_at, id)` of the last row seen.
///
/// Keyset pagination rather than OFFSET: a page costs the same however deep it is, and tasks
/// created meanwhile neither shift nor repeat rows. The creation time is kept in whole
/// microseconds (PostgreSQL's precision) so the cursor is exact; a `Date` would round.
public struct TaskCursor: Sendable, Hashable, Codable, LosslessStringConvertible {
    public var createdAtMicroseconds: Int64
    public var id: UUID

    public init(createdAtMicroseconds: Int64, id: UUID) {
        self.createdAtMicroseconds = createdAtMicroseconds
        self.id = id
    }

    /// `MICROSECONDS.UUID`, the form `orcastra task list --after` takes.
    public init?(_ description: String) {
        let parts = description.split(separator: ".", maxSplits: 1)
        guard parts.count == 2, let micros = Int64(parts[0]), let id = UUID(uuidString: String(parts[1])) else { return nil }
        self.init(createdAtMicroseconds: micros, id: id)
    }

    public var description: String { "\(createdAtMicroseconds).\(id.uuidString.lowercased())" }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let cursor = TaskCursor(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a task cursor: \(text)"))
        }
        self = cursor
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// What `OrcastraClient.tasks(filter:)` returns. Every field narrows the listing; nil means any.
public struct TaskFilter: Sendable, Hashable {
    /// The template's namespace.
    public var namespace: String?
    /// The template's name (any version).
    public var templateName: String?
    /// Any of these states; empty means every state.
    public var states: Set<TaskState>
    /// Created at or after this time.
    public var createdAfter: Date?
    /// Created before this time.
    public var createdBefore: Date?
    /// At most this many rows (1…1000).
    public var limit: Int
    /// Start after this row: the `cursor` of the last row of the previous page.
    public var after: TaskCursor?

    public init(namespace: String? = nil, templateName: String? = nil, states: Set<TaskState> = [],
                createdAfter: Date? = nil, createdBefore: Date? = nil, limit: Int = 50, after: TaskCursor? = nil) {
        self.namespace = namespace
        self.templateName = templateName
        self.states = states
        self.createdAfter = createdAfter
        self.createdBefore = createdBefore
        self.limit = limit
        self.after = after
    }
}

/// One state change of a task or of one of its steps, from the audit tables.
public struct TransitionEvent: Sendable, Hashable, Codable {
    public init(time: Date, kind: Kind, stepID: Int64?, stepName: String?, from: String?, to: String, reason: String,
                attempt: Int?, metadata: JSONValue?) {
        self.time = time
        self.kind = kind
        self.stepID = stepID
        self.stepName = stepName
        self.from = from
        self.to = to
        self.reason = reason
        self.attempt = attempt
        self.metadata = metadata
    }

    public enum Kind: String, Sendable, Hashable, Codable { case task, step }

    public var time: Date
    public var kind: Kind
    /// Set for step events.
    @NullEncoded public var stepID: Int64?
    @NullEncoded public var stepName: String?
    /// Nil for the creation of the row.
    @NullEncoded public var from: String?
    public var to: String
    public var reason: String
    /// The step's attempt count at the time of the move (step events only).
    @NullEncoded public var attempt: Int?
    /// E.g. `{"worker": "host-1:4242"}` when a worker held the step.
    @NullEncoded public var metadata: JSONValue?

    enum CodingKeys: String, CodingKey {
        case time, kind, from, to, reason, attempt, metadata
        case stepID = "step_id", stepName = "step_name"
    }
}
