import Foundation

/// Lets one `ProcessCluster` run at a time across every test suite and target.
///
/// Clusters start real orchestrator and worker processes and measure leases and timeouts; on two
/// cores, two of them at once (plus the rest of the suite) starve each other's heartbeats. Fast
/// in-process tests still run in parallel. A holder that never releases (a crashed test) is
/// waited for at most two minutes.
actor ProcessGate {
    static let shared = ProcessGate()

    private var held = false
    private var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
    private var nextID: UInt64 = 0

    func acquire() async {
        guard held else {
            held = true
            return
        }
        nextID += 1
        let id = nextID
        let watchdog = Task {
            try? await Task.sleep(for: .seconds(120))
            if !Task.isCancelled { self.giveUp(id) }
        }
        await withCheckedContinuation { waiters.append((id, $0)) }
        watchdog.cancel()
    }

    func release() {
        if waiters.isEmpty {
            held = false
        } else {
            waiters.removeFirst().continuation.resume()
        }
    }

    private func giveUp(_ id: UInt64) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: index).continuation.resume()
    }
}
