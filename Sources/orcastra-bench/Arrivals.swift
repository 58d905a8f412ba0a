import Foundation
import OrcastraPostgres

/// When each task's completion notification arrived, as the client sees it.
actor Arrivals {
    private var arrived: [String: ContinuousClock.Instant] = [:]
    private var waiters: [String: CheckedContinuation<ContinuousClock.Instant?, Never>] = [:]

    /// Forwards `orcastra_task_events` notifications until the listener stops.
    nonisolated func follow(_ listener: PostgresListener) -> Task<Void, Never> {
        Task {
            for await event in listener {
                if case .notification(_, let payload) = event { await self.record(payload, at: .now) }
            }
        }
    }

    private func record(_ id: String, at instant: ContinuousClock.Instant) {
        if let waiter = waiters.removeValue(forKey: id) {
            waiter.resume(returning: instant)
        } else {
            arrived[id] = instant
        }
    }

    /// The instant the notification for `id` arrived, waiting up to `timeout`; nil if it never did.
    func wait(for id: String, timeout: Duration = .seconds(30)) async -> ContinuousClock.Instant? {
        if let instant = arrived.removeValue(forKey: id) { return instant }
        let watchdog = Task {
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { self.expire(id) }
        }
        defer { watchdog.cancel() }
        return await withCheckedContinuation { waiters[id] = $0 }
    }

    private func expire(_ id: String) {
        waiters.removeValue(forKey: id)?.resume(returning: nil)
    }

    func forgetAll() { arrived.removeAll() }
}
