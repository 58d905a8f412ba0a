import Foundation
import OrcastraAPIClient
import OrcastraClient
import OrcastraCommandLine
import OrcastraSchedules
import OrcastraStateMachines
import OrcastraStore
import OrcastraTemplates
import Synchronization

/// What the task and step commands need, served straight from PostgreSQL (OrcastraClient) or
/// through the HTTP API (OrcastraAPI, `--api-url`): the commands print the same either way.
protocol TaskService: Sendable {
    func submit(_ request: TaskRequest) async throws -> TaskCreation
    func task(_ id: UUID) async throws -> TaskDetail
    func tasks(filter: TaskFilter) async throws -> [TaskSummary]
    func transitions(_ id: UUID) async throws -> [TransitionEvent]
    func cancel(_ id: UUID, reason: String) async throws -> TaskState
    func retryStep(_ id: Int64, reason: String) async throws -> StepState
    func resolveStep(_ id: Int64, result: JSONValue, reason: String) async throws -> StepState
    /// Steps waiting in a namespace no live worker serves (a hint; empty when it cannot be known).
    func unservedNamespaces(in detail: TaskDetail) async throws -> [(namespace: String, steps: [StepDetail])]
    /// One step with its attempts and its state changes.
    func step(_ id: Int64) async throws -> StepHistory
    /// The registered workers (stale ones too), and the namespaces where steps wait with no live worker.
    func workers(namespace: String?) async throws -> (workers: [WorkerInfo], unserved: [UnservedNamespace])
    /// Schedules (docs/schedules.md), by namespace and name; a bare name is resolved as over SQL.
    func schedules(namespace: String?) async throws -> [ScheduleInfo]
    func schedule(_ name: ScheduleName) async throws -> ScheduleInfo
    func createSchedule(_ definition: ScheduleDefinition) async throws -> ScheduleInfo
    func pauseSchedule(_ name: ScheduleName) async throws -> ScheduleInfo
    func resumeSchedule(_ name: ScheduleName) async throws -> ScheduleInfo
    func deleteSchedule(_ name: ScheduleName) async throws -> ScheduleInfo
    func triggerSchedule(_ name: ScheduleName) async throws -> (task: UUID, scheduledFor: Date)
    /// Throws the registry's refusal (with the closest names) when no version of `reference` is registered.
    func checkTemplateExists(_ reference: TemplateReference) async throws
    /// Watches a task until it is settled; `ClientError.waitTimedOut` after `timeout`.
    func watch(_ id: UUID, timeout: Duration?, progress: @escaping @Sendable (TaskDetail) -> Void) async throws -> TaskDetail
}

extension OrcastraClient: TaskService {
    func transitions(_ id: UUID) async throws -> [TransitionEvent] { try await events(id) }

    func checkTemplateExists(_ reference: TemplateReference) async throws {
        _ = try await TemplateRegistry(pool: pool).find(reference)
    }

    func workers(namespace: String?) async throws -> (workers: [WorkerInfo], unserved: [UnservedNamespace]) {
        (try await workers(namespace: namespace, includeStale: true), try await unservedNamespaces(namespace: namespace))
    }

    func unservedNamespaces(in detail: TaskDetail) async throws -> [(namespace: String, steps: [StepDetail])] {
        try await stepsWithoutLiveWorker(in: detail)
    }

    func watch(_ id: UUID, timeout: Duration?, progress: @escaping @Sendable (TaskDetail) -> Void) async throws -> TaskDetail {
        try await waitForCompletion(id, timeout: timeout, progress: progress)
    }
}

extension OrcastraAPI: TaskService {
    func cancel(_ id: UUID, reason: String) async throws -> TaskState { try await cancel(id, reason: Optional(reason)) }

    func retryStep(_ id: Int64, reason: String) async throws -> StepState { try await retryStep(id, reason: Optional(reason)) }

    func transitions(_ id: UUID) async throws -> [TransitionEvent] { try await events(id) }

    func checkTemplateExists(_ reference: TemplateReference) async throws {
        _ = try await template(reference)
    }

    func workers(namespace: String?) async throws -> (workers: [WorkerInfo], unserved: [UnservedNamespace]) {
        try await workers(namespace: namespace, includeStale: true)
    }

    /// As the SQL path: the task's queued steps whose namespace no live worker serves.
    func unservedNamespaces(in detail: TaskDetail) async throws -> [(namespace: String, steps: [StepDetail])] {
        let queued = Dictionary(grouping: detail.queuedSteps, by: \.namespace)
        guard !queued.isEmpty else { return [] }
        let unserved = try await unservedNamespaces()
        return queued.keys.filter(unserved.contains).sorted().map { ($0, queued[$0] ?? []) }
    }

    /// Follows the task's event stream (`GET /v1/tasks/{id}/events`, Server-Sent Events, woken by
    /// NOTIFY on the server) and reads the task again after each transition, so the progress shown
    /// is the same as over SQL; no polling. A stream that breaks (an idle connection timed out, a
    /// proxy cut it) is taken up again after the last event read (`Last-Event-ID`).
    func watch(_ id: UUID, timeout: Duration?, progress: @escaping @Sendable (TaskDetail) -> Void) async throws -> TaskDetail {
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now + $0 }
        let shown = LastShown()
        @Sendable func read() async throws -> TaskDetail {
            let detail = try await task(id)
            if shown.replace(detail) { progress(detail) }
            return detail
        }
        var detail = try await read()
        var after = 0
        while !detail.isSettled {
            let followed: Int?
            let from = after
            do {
                followed = try await Self.within(deadline.map { $0 - clock.now }) {
                    try await followEvents(id, after: from) { _ in _ = try await read() }.lastID
                }
            } catch is APIUnreachable {
                // The stream broke; reading the task says whether the server is still there (if not,
                // that error ends the wait), then the stream is taken up again after a moment.
                detail = try await read()
                if !detail.isSettled { try await Task.sleep(for: .seconds(1)) }
                continue
            }
            detail = try await read()
            guard let followed else {
                if detail.isSettled { break }
                throw ClientError.waitTimedOut(task: id, after: timeout ?? .zero, state: detail.state.rawValue)
            }
            after = followed
        }
        return detail
    }

    /// `body`'s value, or nil when `limit` passes first (then `body` is cancelled); no limit waits for it.
    private static func within<Value: Sendable>(_ limit: Duration?, _ body: @escaping @Sendable () async throws -> Value) async throws -> Value? {
        guard let limit else { return try await body() }
        guard limit > .zero else { return nil }
        return try await withThrowingTaskGroup(of: Value?.self) { group in
            group.addTask { try await body() }
            group.addTask { try await Task.sleep(for: limit); return nil }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }
}

/// The task as last shown by a watch, so that an unchanged read is not shown again.
private final class LastShown: Sendable {
    private let last = Mutex<TaskDetail?>(nil)

    /// Whether `detail` differs from the last one (and is now the last one).
    func replace(_ detail: TaskDetail) -> Bool {
        last.withLock { last in
            guard last != detail else { return false }
            last = detail
            return true
        }
    }
}

extension CLI {
    /// The task service for one command: the HTTP API when --api-url (or ORCASTRA_API_URL) is
    /// given, else a database client, shut down when the command is done whatever happens.
    static func withService<Value>(_ database: DatabaseOptions, _ body: (any TaskService) async throws -> Value) async throws -> Value {
        if let access = APIAccess.current {
            return try await body(try access.connect())
        }
        return try await withClient(database) { try await body($0) }
    }
}

/// What the two services throw for the same refusal.
enum TaskServiceErrors {
    /// The task does not exist (any more): the library's `StoreError.taskNotFound`, or the API's 404 `unknown-task`.
    static func isUnknownTask(_ error: any Error) -> Bool {
        if case .taskNotFound? = error as? StoreError { return true }
        if let problem = error as? APIProblem, problem.type == "unknown-task" { return true }
        return false
    }
}
