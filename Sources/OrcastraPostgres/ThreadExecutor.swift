import Foundation
import Synchronization

/// A serial executor that runs every job on one dedicated OS thread.
///
/// libpq's calls block. Swift's cooperative pool has as many threads as cores (two here), so one
/// blocking `PQexec` there stalls half of the process. Each `PostgresConnection` actor therefore runs
/// on its own thread: blocking is harmless, and actor isolation still gives us exclusive access to
/// the `PGconn`, which libpq requires.
public final class ThreadExecutor: SerialExecutor, @unchecked Sendable {
    private struct State {
        var jobs: [UnownedJob] = []
        var stopping = false
    }

    private let condition = NSCondition()
    private var state = State()  // guarded by `condition`

    /// Starts the thread. It runs until `shutdown()` and keeps the executor alive until then.
    public init(name: String) {
        let thread = Thread { [self] in self.runLoop(name: name) }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        state.jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Lets the thread finish the jobs already queued, then exit.
    public func shutdown() {
        condition.lock()
        state.stopping = true
        condition.signal()
        condition.unlock()
    }

    private func runLoop(name: String) {
        // Foundation does not name the kernel thread on Linux, and a new thread inherits its
        // creator's name (often a dispatch worker's); name it so `top -H` and tests can tell.
        try? String(name.prefix(15)).write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
        let executor = asUnownedSerialExecutor()
        while true {
            condition.lock()
            while state.jobs.isEmpty && !state.stopping {
                condition.wait()
            }
            if state.jobs.isEmpty {
                condition.unlock()
                return
            }
            let batch = state.jobs
            state.jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch {
                job.runSynchronously(on: executor)
            }
        }
    }
}
