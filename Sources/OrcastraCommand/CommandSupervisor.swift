#if canImport(Glibc)
import Glibc
#endif

/// Drives one child from spawn to reap on the calling (dedicated) thread: feeds stdin, drains
/// stdout and stderr, enforces the timeout and cancellation, and always reaps.
///
/// Everything is multiplexed through one `poll` loop with non-blocking descriptors, so a child that
/// never reads stdin, or writes megabytes while we still have stdin to give it, cannot deadlock us.
struct CommandSupervisor {
    let invocation: CommandInvocation
    let signal: CancellationSignal

    /// How long to keep reading after the process group has been killed. Output already in the pipes
    /// is read at once; this only bounds the wait for end-of-file when some process escaped the group
    /// (`setsid`) and still holds a pipe open.
    static let drainGrace: Duration = .milliseconds(250)
    /// Upper bound between checks for the child's exit while its pipes stay open (a background
    /// grandchild may hold them long after the child itself is gone).
    static let maximumExitCheckInterval = 50

    private enum Ending {
        case exited
        case timedOut
        case cancelled
    }

    func run() -> CommandOutcome {
        defer { signal.close() }
        Self.blockSIGPIPEOnThisThread()
        let clock = ContinuousClock()
        let started = clock.now

        let name = invocation.argv.first ?? ""
        let searchPath = invocation.environment["PATH"] ?? getenv("PATH").map { String(cString: $0) }
        let executable: String
        switch ExecutableLookup.resolve(name, searchPath: searchPath, workingDirectory: invocation.workingDirectory) {
        case .success(let path): executable = path
        case .failure(let failure): return failed(failure.message, since: started)
        }

        var stdinPipe: (read: Int32, write: Int32)
        var stdoutPipe: (read: Int32, write: Int32)
        var stderrPipe: (read: Int32, write: Int32)
        do {
            stdinPipe = try FileDescriptor.makePipe()
            do {
                stdoutPipe = try FileDescriptor.makePipe()
                do {
                    stderrPipe = try FileDescriptor.makePipe()
                } catch {
                    FileDescriptor.close(&stdoutPipe.read)
                    FileDescriptor.close(&stdoutPipe.write)
                    throw error
                }
            } catch {
                FileDescriptor.close(&stdinPipe.read)
                FileDescriptor.close(&stdinPipe.write)
                throw error
            }
        } catch {
            return failed("Could not start \(name): \(error).", since: started)
        }

        let spawned = ProcessSpawner.spawn(ProcessSpawner.Request(
            executable: executable,
            argv: invocation.argv,
            environment: invocation.environment,
            workingDirectory: invocation.workingDirectory,
            standardInput: stdinPipe.read,
            standardOutput: stdoutPipe.write,
            standardError: stderrPipe.write
        ))
        // The child has its own copies now; ours would keep the pipes from ever reaching end-of-file.
        FileDescriptor.close(&stdinPipe.read)
        FileDescriptor.close(&stdoutPipe.write)
        FileDescriptor.close(&stderrPipe.write)

        let pid: pid_t
        switch spawned {
        case .success(let child):
            pid = child
            LiveProcessGroups.add(child)
        case .failure(let failure):
            FileDescriptor.close(&stdinPipe.write)
            FileDescriptor.close(&stdoutPipe.read)
            FileDescriptor.close(&stderrPipe.read)
            return failed(failure.message, since: started)
        }

        var session = Session(
            stdin: stdinPipe.write,
            stdout: stdoutPipe.read,
            stderr: stderrPipe.read,
            input: invocation.standardInput,
            output: HeadCapture(limit: invocation.outputLimit),
            error: TailCapture(limit: invocation.errorLimit)
        )
        defer { session.closeAll() }

        let ending = supervise(pid: pid, session: &session, deadline: started + invocation.timeout, clock: clock)

        // Kill the group whatever the ending: on timeout or cancellation to stop the work, after a
        // normal exit to sweep up background processes the step left behind. The leader is not yet
        // reaped, so its pid, and with it the group id, cannot have been reused.
        kill(-pid, SIGKILL)
        LiveProcessGroups.remove(pid)
        session.closeInput()
        session.drain(until: clock.now + Self.drainGrace, clock: clock)
        let status = Self.reap(pid)

        let termination: CommandOutcome.Termination
        switch ending {
        case .exited: termination = status.map(WaitStatus.termination) ?? .exited(-1)
        case .timedOut: termination = .timedOut
        case .cancelled: termination = .cancelled
        }
        return CommandOutcome(
            termination: termination,
            standardOutput: session.output.bytes,
            standardError: session.error.bytes,
            outputTruncated: session.output.truncated,
            errorTruncated: session.error.truncated,
            duration: clock.now - started
        )
    }

    /// Pumps the pipes until the child exits, the deadline passes or the task is cancelled.
    private func supervise(
        pid: pid_t,
        session: inout Session,
        deadline: ContinuousClock.Instant,
        clock: ContinuousClock
    ) -> Ending {
        // After the output pipes close the child is about to exit, so look again soon; back off from there.
        var exitCheckInterval = 1
        while true {
            if Self.hasExited(pid) { return .exited }
            if signal.isCancelled { return .cancelled }
            let now = clock.now
            if now >= deadline { return .timedOut }

            let interval = session.outputOpen ? Self.maximumExitCheckInterval : exitCheckInterval
            let wait = min(Self.milliseconds(deadline - now), interval)
            session.pump(timeout: Int32(wait), wake: signal.wakeDescriptor)
            if !session.outputOpen {
                exitCheckInterval = min(exitCheckInterval * 2, Self.maximumExitCheckInterval)
            }
        }
    }

    /// Whether the child has exited, *without* reaping it (`WNOWAIT`), so its pid stays reserved
    /// until the group has been killed.
    private static func hasExited(_ pid: pid_t) -> Bool {
        var info = siginfo_t()
        while true {
            if waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 {
                return info.si_signo == SIGCHLD
            }
            if errno == EINTR { continue }
            // ECHILD: someone else reaped it (SIGCHLD set to SIG_IGN, or a waitpid(-1) elsewhere).
            return true
        }
    }

    /// The wait status, or `nil` when it was lost to another reaper.
    private static func reap(_ pid: pid_t) -> Int32? {
        var status: Int32 = 0
        while true {
            if waitpid(pid, &status, 0) == pid { return status }
            if errno != EINTR { return nil }
        }
    }

    /// Writing to a pipe whose reader is gone raises SIGPIPE in the writing thread, and its default
    /// action kills the whole worker. Blocking it on this thread alone makes `write` fail with `EPIPE`
    /// instead, without changing the process-wide disposition; the pending signal is discarded when
    /// the thread exits. The child does not inherit the mask (see ``ProcessSpawner``).
    private static func blockSIGPIPEOnThisThread() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        if seconds >= Int64(Int32.max / 1000) { return Int(Int32.max) }
        let whole = Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
        let remainder = attoseconds % 1_000_000_000_000_000
        return max(0, whole + (remainder > 0 ? 1 : 0))
    }

    private func failed(_ message: String, since started: ContinuousClock.Instant) -> CommandOutcome {
        CommandOutcome(termination: .failedToStart(message), duration: ContinuousClock.now - started)
    }
}
