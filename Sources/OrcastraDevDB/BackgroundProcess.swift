import Foundation
import Synchronization

/// A long-running child process (an orchestrator, a worker) started with posix_spawn, its output
/// sent to a log file, stopped with a signal of the caller's choice. Used by `orcastra demo`, the
/// benchmark and the end-to-end tests; every one still running is killed when this process exits.
public final class BackgroundProcess: @unchecked Sendable {
    public let pid: pid_t
    public let logPath: String
    private let lock = NSLock()
    private var exitStatus: Int32?

    /// Starts `executable` with our environment plus `environment`.
    public init(_ executable: String, _ arguments: [String], environment: [String: String], logPath: String) throws {
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        self.logPath = logPath
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let pid = try Spawn.start(executable, arguments, environment: merged, actions: &actions)
        self.pid = pid
        ChildProcesses.register(pid)
    }

    /// Sends `signal` (SIGTERM for a graceful stop, SIGKILL for a crash).
    public func send(_ signal: Int32) {
        if exitStatus == nil { _ = Foundation.kill(pid, signal) }
    }

    /// Waits up to `timeout` for the process to exit; returns its exit code (128+n for signal n) or nil.
    public func wait(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = poll() { return status }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return poll()
    }

    private func poll() -> Int32? {
        lock.lock()
        defer { lock.unlock() }
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        guard result == pid else { return nil }
        let code = Spawn.exitCode(status)
        exitStatus = code
        return code
    }

    /// Stops the process for good (SIGKILL) and reaps it.
    public func stop() async {
        send(SIGKILL)
        _ = await wait(timeout: .seconds(5))
    }

    /// What it has logged so far.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
}

/// Every background process started, killed when this process exits — a caller's deferred
/// cleanup (a test's, say) may not get to run before the process ends.
enum ChildProcesses {
    private static let pids = Mutex<[pid_t]>([])

    static func register(_ pid: pid_t) {
        let first = pids.withLock { list in
            list.append(pid)
            return list.count == 1
        }
        if first { atexit { ChildProcesses.killAll() } }
    }

    static func killAll() {
        for pid in pids.withLock({ $0 }) { _ = Foundation.kill(pid, SIGKILL) }
    }
}
