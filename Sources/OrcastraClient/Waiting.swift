import Foundation
import OrcastraPostgres
import OrcastraStateMachines

extension OrcastraClient {
    /// The channel watchers LISTEN on. Its payload is a task id; an empty payload wakes every watcher.
    /// Notifications only wake a watcher: it always re-reads the task, never trusts the payload.
    public static let taskEventsChannel = ProtocolChannel.taskEvents

    /// Waits until the task has settled — complete, cancelled, resolved by hand, or in `error` — and
    /// returns it as last read.
    ///
    /// `error` ends the wait although it is not terminal: nothing else runs until an operator acts,
    /// so waiting longer would wait forever. The caller tells the two apart by `state`.
    ///
    /// Woken by LISTEN on ``taskEventsChannel``, and re-checked every `pollInterval` as well, so a
    /// lost notification (or a database function that does not send one) costs latency, never the
    /// answer. A reconnect of the listening connection triggers a re-check too.
    ///
    /// - Parameters:
    ///   - timeout: give up after this long with `ClientError.waitTimedOut`; nil waits for ever.
    ///   - pollInterval: the fallback re-check interval.
    ///   - progress: called with the first snapshot and with every snapshot that differs from the
    ///     one before (a step started, finished, failed…), on the waiting task.
    public func waitForCompletion(
        _ id: UUID,
        timeout: Duration? = nil,
        pollInterval: Duration = .milliseconds(250),
        progress: (@Sendable (TaskDetail) -> Void)? = nil
    ) async throws -> TaskDetail {
        let listener = PostgresListener(conninfo: PostgresListener.conninfo(forDatabase: pool.conninfo), channels: [Self.taskEventsChannel])
        defer { listener.stop() }
        // One pending wake-up is enough: every wake-up re-reads the whole task.
        let (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now + $0 }
        let idText = id.uuidString.lowercased()

        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await event in listener {
                    switch event {
                    case .listening:
                        wake.yield()
                    case .notification(_, let payload):
                        if payload.isEmpty || payload.lowercased() == idText { wake.yield() }
                    }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    var interval = pollInterval
                    if let deadline { interval = min(interval, max(deadline - clock.now, .milliseconds(1))) }
                    try await Task.sleep(for: interval)
                    wake.yield()
                }
            }
            defer {
                group.cancelAll()
                wake.finish()
            }
            var last: TaskDetail?
            var iterator = wakeups.makeAsyncIterator()
            repeat {
                let detail = try await task(id)
                if detail != last {
                    progress?(detail)
                    last = detail
                }
                if detail.isSettled { return detail }
                if let deadline, clock.now >= deadline, let timeout {
                    throw ClientError.waitTimedOut(task: id, after: timeout, state: detail.state.rawValue)
                }
            } while await iterator.next() != nil
            throw CancellationError()
        }
    }
}
