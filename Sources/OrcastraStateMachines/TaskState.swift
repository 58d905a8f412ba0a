/// The life of a task. Only states a person can see and act on are stored; the orchestrator's
/// internal phases (initializing, enqueuing, evaluating) happen inside single transactions.
public enum TaskState: String, CaseIterable, Sendable, Codable, StateMachineState {
    /// Submitted with a start time in the future; nothing runs yet. Operator: cancel.
    case pending
    /// At least one step is enqueued or running. Operator: cancel.
    case inProgress = "in_progress"
    /// Nothing runs right now; a failed step waits for its next attempt. Operator: cancel.
    case waitingForRetry = "waiting_for_retry"
    /// A step failed for good and nothing else can run. Operator: retry or resolve the step, or cancel.
    case error
    /// Every step completed (or was resolved by hand).
    case complete
    /// Cancelled by an operator; no step starts again.
    case cancelled
    /// An operator declared the whole task done.
    case resolvedManually = "resolved_manually"

    public static let initial: TaskState = .pending

    public var isTerminal: Bool { self == .complete || self == .cancelled || self == .resolvedManually }

    /// The legal transitions, mirrored from SQL — the source of truth is
    /// `orcastra.task_state_transitions_allowed`, enforced by the triggers in
    /// `Migrations/functions/audit.sql`; `StateMachineDatabaseTests` requires this table to equal it.
    public static let transitions: [TaskState: Set<TaskState>] = [
        .pending: [.inProgress, .cancelled],
        .inProgress: [.waitingForRetry, .error, .complete, .cancelled, .resolvedManually],
        // waiting_for_retry/error → complete or error: an operator resolved the step that held the task.
        .waitingForRetry: [.inProgress, .complete, .error, .cancelled, .resolvedManually],
        .error: [.inProgress, .complete, .cancelled, .resolvedManually],
        .complete: [],
        .cancelled: [],
        .resolvedManually: [],
    ]
}
