#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The process groups of every command running in this process, so that a forced exit can kill
/// them first: a worker that exits at once (a second SIGTERM) must not leave a step's command
/// running as an orphan while another worker runs the same step again.
public enum LiveProcessGroups {
    private static let groups = Mutex<Set<pid_t>>([])

    /// Called once the child runs in its own group (pgid = its pid).
    static func add(_ pid: pid_t) {
        groups.withLock { _ = $0.insert(pid) }
    }

    /// Called after the group was killed and before the leader is reaped, so the id cannot be
    /// reused while it is listed.
    static func remove(_ pid: pid_t) {
        groups.withLock { _ = $0.remove(pid) }
    }

    /// How many commands run now.
    public static var count: Int { groups.withLock { $0.count } }

    /// Sends SIGKILL to every running command's process group. Safe to call from any thread; the
    /// supervisors reap the children as usual.
    public static func killAll() {
        let pids = groups.withLock { Array($0) }
        for pid in pids { kill(-pid, SIGKILL) }
    }
}
