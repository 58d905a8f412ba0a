import Synchronization

/// Set once, read from any thread: the worker's "shutting down" flag that handlers can see, and
/// that ends the worker's waits at once, so a retry backoff never delays a graceful exit (an idle
/// worker waiting for its database used to finish a sleep of up to 5 s before it exited).
final class ShutdownFlag: Sendable {
    private struct Waiters {
        var isSet = false
        var next = 0
        var continuations: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let value = Atomic<Bool>(false)
    private let waiters = Mutex(Waiters())

    init() {}

    var isSet: Bool { value.load(ordering: .acquiring) }

    func set() {
        let woken = waiters.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard !state.isSet else { return [] }
            state.isSet = true
            value.store(true, ordering: .releasing)
            defer { state.continuations = [:] }
            return Array(state.continuations.values)
        }
        for continuation in woken { continuation.resume() }
    }

    /// Sleeps for `duration`, or less if the flag is set (or the task cancelled) meanwhile.
    func sleep(for duration: Duration) async {
        guard !isSet else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: duration) }
            group.addTask { await self.waitUntilSet() }
            await group.next()
            group.cancelAll()
        }
    }

    /// Returns once the flag is set or the task is cancelled.
    func waitUntilSet() async {
        let key = waiters.withLock { state -> Int in
            state.next += 1
            return state.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = waiters.withLock { state -> Bool in
                    if state.isSet || Task.isCancelled { return true }
                    state.continuations[key] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            waiters.withLock { $0.continuations.removeValue(forKey: key) }?.resume()
        }
    }
}
