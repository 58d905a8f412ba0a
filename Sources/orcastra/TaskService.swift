import Foundation
import OrcastraAPIClient
import OrcastraClient
import OrcastraCommandLine
import OrcastraStateMachines
import OrcastraStore
import OrcastraTemplates

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
    /// Watches a task until it is settled; `ClientError.waitTimedOut` after `timeout`.
    func watch(_ id: UUID, timeout: Duration?, progress: @escaping @Sendable (TaskDetail) -> Void) async throws -> TaskDetail
}

extension OrcastraClient: TaskService {
    func transitions(_ id: UUID) async throws -> [TransitionEvent] { try await events(id) }

    func unservedNamespaces(in detail: TaskDetail) async throws -> [(namespace: String, steps: [StepDetail])] {
        try await stepsWithoutLiveWorker(in: detail)
    }

    func watch(_ id: UUID, timeout: Duration?, progress: @escaping @Sendable (TaskDetail) -> Void) async throws -> TaskDetail {
        try await waitForCompletion(id, timeout: timeout, progress: progress)
    }
}

extension OrcastraAPI: TaskService {
    /// The API records its own reason ("cancelled through the API"); it takes none.
    func cancel(_ id: UUID, reason: String) async throws -> TaskState { try await cancel(id) }

    /// The API records its own reason ("retried through the API"); it takes none.
    func retryStep(_ id: Int64, reason: String) async throws -> StepState { try await retryStep(id) }

    func transitions(_ id: UUID) async throws -> [TransitionEvent] { try await events(id) }

    /// As the SQL path: the task's queued steps whose namespace no live worker serves.
    func unservedNamespaces(in detail: TaskDetail) async throws -> [(namespace: String, steps: [StepDetail])] {
        let queued = Dictionary(grouping: detail.queuedSteps, by: \.namespace)
        guard !queued.isEmpty else { return [] }
        let unserved = try await unservedNamespaces()
        return queued.keys.filter(unserved.contains).sorted().map { ($0, queued[$0] ?? []) }
    }

    /// Reads the task every quarter second (the SQL watch also listens for NOTIFY; the API's
    /// event stream would spare the polling, at the price of an SSE reader here).
    func watch(_ id: UUID, timeout: Duration?, progress: @escaping @Sendable (TaskDetail) -> Void) async throws -> TaskDetail {
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now + $0 }
        var last: TaskDetail?
        while true {
            let detail = try await task(id)
            if detail != last { progress(detail) }
            last = detail
            if detail.isSettled { return detail }
            if let deadline, clock.now >= deadline {
                throw ClientError.waitTimedOut(task: id, after: timeout ?? .zero, state: detail.state.rawValue)
            }
            var interval = Duration.milliseconds(250)
            if let deadline { interval = min(interval, max(deadline - clock.now, .milliseconds(1))) }
            try await Task.sleep(for: interval)
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
