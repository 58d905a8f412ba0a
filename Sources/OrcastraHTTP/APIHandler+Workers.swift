import Foundation
import OrcastraAPITypes
import OrcastraClient

/// The worker registry and a step's attempts over HTTP: what `orcastra worker list` and
/// `orcastra step show` print.
extension APIHandler {
    func listWorkers(_ input: Operations.ListWorkers.Input) async throws -> Operations.ListWorkers.Output {
        let namespace = input.query.namespace
        let workers = try await client.workers(namespace: namespace, includeStale: input.query.includeStale ?? false)
        let unserved = try await client.unservedNamespaces(namespace: namespace)
        return .ok(.init(body: .json(.init(
            workers: workers.map { worker in
                .init(id: worker.id, namespace: worker.namespace, host: worker.host, pid: worker.pid, version: worker.version,
                      concurrency: worker.concurrency, runningSteps: worker.runningSteps,
                      heartbeatIntervalSeconds: worker.heartbeatIntervalSeconds, startedAt: worker.startedAt,
                      lastSeenAt: worker.lastSeenAt, secondsSinceLastSeen: worker.secondsSinceLastSeen, stale: worker.stale)
            },
            unserved: unserved.map { .init(namespace: $0.namespace, enqueuedSteps: $0.enqueuedSteps) }))))
    }

    func listStepAttempts(_ input: Operations.ListStepAttempts.Input) async throws -> Operations.ListStepAttempts.Output {
        let history = try await client.step(input.path.id)
        return .ok(.init(body: .json(.init(
            taskId: history.taskID.uuidString.lowercased(), template: history.template, step: Self.step(history.step),
            attempts: history.attempts.map { attempt in
                .init(number: attempt.number, worker: attempt.worker, startedAt: attempt.startedAt, endedAt: attempt.endedAt,
                      durationSeconds: attempt.durationSeconds, outcome: attempt.outcome?.rawValue, reason: attempt.reason,
                      error: attempt.error)
            },
            transitions: history.transitions.map(Self.event)))))
    }
}
