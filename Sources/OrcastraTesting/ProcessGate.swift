import Foundation

/// Lets one `ProcessCluster` (or any other test that starts the package's processes) run at a time
/// across every test suite and target.
///
/// Clusters start real orchestrator and worker processes and measure leases and timeouts; on two
/// cores, two of them at once (plus the rest of the suite) starve each other's heartbeats. Fast
/// in-process tests still run in parallel. A waiter waits as long as it takes: a holder always
/// releases (`withGate`, `ProcessCluster.shutdown()`), and a stuck one is ended by its test's own
/// time limit. A waiter whose task is cancelled leaves the line and throws `CancellationError`.
public actor ProcessGate {
    public static let shared = ProcessGate()

    private var held = false
    private var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    private var nextID: UInt64 = 0

    /// Runs `body` holding the gate, and releases it however `body` ends.
    public nonisolated func withGate<Value: Sendable>(_ body: () async throws -> Value) async throws -> Value {
        try await acquire()
        do {
            let value = try await body()
            await release()
            return value
        } catch {
            await release()
            throw error
        }
    }

    /// Waits for the gate. Every successful call must be paired with one `release()`.
    public func acquire() async throws {
        guard held else {
            held = true
            return
        }
        nextID += 1
        let id = nextID
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                } else {
                    waiters.append((id, continuation))
                }
            }
        } onCancel: {
            Task { await self.leaveLine(id) }
        }
    }

    public func release() {
        if waiters.isEmpty {
            held = false
        } else {
            // The gate passes straight to the next waiter; `held` stays true.
            waiters.removeFirst().continuation.resume()
        }
    }

    private func leaveLine(_ id: UInt64) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: index).continuation.resume(throwing: CancellationError())
    }
}
