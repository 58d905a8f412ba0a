import Foundation

/// What the client refuses or gives up on, each as one sentence that says what to do next.
///
/// Unknown tasks are `StoreError.taskNotFound`, shared with the store; the cases here are the ones
/// only the client produces.
public enum ClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No step has this id.
    case stepNotFound(Int64)
    /// The database refused an operator action on a step (SQLSTATE OR002): the step is in a state
    /// where the action makes no sense. `reason` is the database's explanation.
    case stepActionRefused(step: Int64, action: StepAction, reason: String)
    /// The database refused an operator action on a whole task (SQLSTATE OR002).
    case taskActionRefused(task: UUID, action: String, reason: String)
    /// `waitForCompletion` gave up; `state` is the task's last state seen.
    case waitTimedOut(task: UUID, after: Duration, state: String)
    /// JSON text (a context, a result) that could not be read; `source` names where it came from.
    case invalidJSON(source: String, problem: String, line: Int?, column: Int?)
    /// Valid JSON that PostgreSQL's jsonb cannot store; `reason` comes from `JSONValue.unstorableReason()`.
    case unstorableJSON(source: String, reason: String)

    /// The database has Orcastra's schema but not the worker registry (migration 0003): it was
    /// migrated by an older Orcastra.
    case registryMissing

    public enum StepAction: String, Sendable, Equatable {
        case retry, resolve
    }

    public var description: String {
        switch self {
        case .stepNotFound(let id):
            return "No step with id \(id). `orcastra task show TASK_ID` lists a task's steps with their ids."
        case .stepActionRefused(let step, let action, let reason):
            let wayOut = switch action {
            case .retry: "`orcastra task show TASK_ID` shows which of the task's steps are in error."
            case .resolve: "`orcastra task show TASK_ID` shows the states of the task's steps."
            }
            return "Cannot \(action.rawValue) step \(step): \(reason). \(wayOut)"
        case .taskActionRefused(let task, let action, let reason):
            return "Cannot \(action) task \(task.uuidString.lowercased()): \(reason). `orcastra task show \(task.uuidString.lowercased())` shows its steps."
        case .invalidJSON(let source, let problem, let line, let column):
            let place = line.map { line in " at line \(line)" + (column.map { ", column \($0)" } ?? "") } ?? ""
            return "\(source) is not valid JSON\(place): \(problem). Write a JSON value such as '{\"order_id\": 42}' (in a shell, inside single quotes)."
        case .unstorableJSON(let source, let reason):
            return "\(source) cannot be stored: \(reason). Nothing was written; remove it, or encode binary data (e.g. as base64)."
        case .registryMissing:
            return "This database has no worker registry: it was migrated by an older Orcastra. Run `orcastra migrate`; workers register themselves once it is there."
        case .waitTimedOut(let task, let after, let state):
            return "Task \(task.uuidString.lowercased()) is still \(state) after \(after.formatted(.units(allowed: [.hours, .minutes, .seconds, .milliseconds], width: .narrow))). Keep watching with `orcastra task wait \(task.uuidString.lowercased())`, or see where it stands with `orcastra task show`."
        }
    }
}
