/// The life of one step of a task.
public enum StepState: String, CaseIterable, Sendable, Codable, StateMachineState {
    /// Waiting for its parents to finish.
    case pending
    /// Ready: visible to the workers of its namespace.
    case enqueued
    /// Claimed by a worker, which holds a lease on it and heartbeats — or, for a workflow step,
    /// running as its child task (no lease, no worker).
    case inProgress = "in_progress"
    /// An attempt failed; the step is enqueued again when its backoff ends.
    case waitingForRetry = "waiting_for_retry"
    /// Finished with a result.
    case complete
    /// Failed for good (attempts exhausted or a permanent failure). Operator: retry or resolve.
    case error
    /// Will not run: its task was cancelled.
    case cancelled
    /// An operator supplied its result by hand; its children run as if it had completed.
    case resolvedManually = "resolved_manually"
    /// Will not run: its `when:` was not true, or its parents' outcomes did not meet its `trigger:`
    /// (by default a skipped parent skips its children). Counts as finished for its task.
    case skipped

    public static let initial: StepState = .pending

    public var isTerminal: Bool { self == .complete || self == .cancelled || self == .resolvedManually || self == .skipped }

    /// Whether children may run after this state (their parent's result exists).
    public var satisfiesDependents: Bool { self == .complete || self == .resolvedManually }

    /// The legal transitions, mirrored from SQL — the source of truth is
    /// `orcastra.step_state_transitions_allowed`, enforced by the triggers in
    /// `Migrations/functions/audit.sql`; `StateMachineDatabaseTests` requires this table to equal it.
    public static let transitions: [StepState: Set<StepState>] = [
        // pending → skipped: its `when:` was not true or its trigger rejected its parents' outcomes.
        // pending → complete / error: a fan-out step (`for_each`), which never runs itself, completes
        // when its instances did (or its list was empty), or fails when its list cannot be made.
        // pending → in_progress: a workflow step (`workflow:`) made its child task; it runs as that
        // task, with no lease (pending → error: it could not make one).
        .pending: [.enqueued, .cancelled, .resolvedManually, .skipped, .complete, .error, .inProgress],
        // enqueued → pending never happens: readiness only grows.
        .enqueued: [.inProgress, .cancelled],
        // in_progress → enqueued: the lease expired (worker died) and the step goes back in line.
        .inProgress: [.complete, .waitingForRetry, .error, .enqueued, .cancelled],
        .waitingForRetry: [.enqueued, .cancelled, .resolvedManually],
        // error → in_progress: an operator's retry of a workflow step makes a new child task.
        // error → pending: a fan-out that failed with its instances carries on when an operator
        // retries or resolves one of them.
        .error: [.enqueued, .resolvedManually, .inProgress, .pending],
        .complete: [],
        .cancelled: [],
        .resolvedManually: [],
        .skipped: [],
    ]
}
