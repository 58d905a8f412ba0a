import Foundation
import OrcastraStateMachines
import OrcastraTemplates

/// One step with every attempt it made: what `orcastra step show` prints.
public struct StepHistory: Sendable, Hashable, Codable {
    @LowercaseUUID public var taskID: UUID
    /// `namespace/name@version` of the task's template.
    public var template: String
    public var step: StepDetail
    /// Oldest first; the last one may still run.
    public var attempts: [StepAttempt]
    /// The step's own state changes, oldest first.
    public var transitions: [TransitionEvent]

    enum CodingKeys: String, CodingKey {
        case taskID = "task_id", template, step, attempts, transitions
    }

    /// The attempts are told by the transitions (`StepAttempt.attempts(from:)`), over SQL and over HTTP alike.
    public init(taskID: UUID, template: String, step: StepDetail, transitions: [TransitionEvent]) {
        self.taskID = taskID
        self.template = template
        self.step = step
        self.transitions = transitions
        attempts = StepAttempt.attempts(from: transitions)
    }
}

/// One attempt of a step: claimed by a worker, then ended one way or another.
public struct StepAttempt: Sendable, Hashable, Codable {
    /// 1 for the first try. An attempt handed back by a worker that shut down does not count, so
    /// the next one has the same number.
    public var number: Int
    /// The id of the worker that ran it (its lease owner: `host-pid-random` by default), as the
    /// worker registry and `orcastra worker list` name it.
    @NullEncoded public var worker: String?
    public var startedAt: Date
    /// Nil while it runs.
    @NullEncoded public var endedAt: Date?
    @NullEncoded public var durationSeconds: Double?
    /// The step's state after the attempt (`complete`, `waiting_for_retry`, `error`, `enqueued` when
    /// handed back, `cancelled`); nil while it runs.
    @NullEncoded public var outcome: StepState?
    /// Why it ended (e.g. `attempt 1 failed; retrying`).
    @NullEncoded public var reason: String?
    /// For a failed attempt: its error — a command's exit status and the end of its stderr.
    @NullEncoded public var error: String?

    enum CodingKeys: String, CodingKey {
        case number, worker, outcome, reason, error
        case startedAt = "started_at", endedAt = "ended_at", durationSeconds = "duration_seconds"
    }

    /// The attempts told by a step's transitions (oldest first): each move into `in_progress`
    /// starts one, the next move out of it ends it.
    public static func attempts(from transitions: [TransitionEvent]) -> [StepAttempt] {
        var attempts: [StepAttempt] = []
        for event in transitions {
            if event.to == StepState.inProgress.rawValue {
                attempts.append(StepAttempt(number: event.attempt ?? attempts.count + 1, worker: Self.string(event.metadata, "worker"),
                                            startedAt: event.time))
            } else if event.from == StepState.inProgress.rawValue, var current = attempts.last, current.endedAt == nil {
                current.endedAt = event.time
                current.durationSeconds = event.time.timeIntervalSince(current.startedAt)
                current.outcome = StepState(rawValue: event.to)
                current.reason = event.reason
                current.error = Self.string(event.metadata, "error")
                attempts[attempts.count - 1] = current
            }
        }
        return attempts
    }

    private static func string(_ metadata: JSONValue?, _ key: String) -> String? {
        guard case .object(let fields)? = metadata, case .string(let value)? = fields[key] else { return nil }
        return value
    }
}
