#if canImport(Glibc)
import Glibc
#endif

/// Starts a child with `posix_spawn`, in a process group of its own.
///
/// `Foundation.Process` is not used: it hangs on Linux when several processes are waited for at
/// once, and it cannot put the child in a new process group, which is what lets a timeout kill a
/// shell script *and* everything it started.
enum ProcessSpawner {
    struct Request {
        var executable: String
        var argv: [String]
        var environment: [String: String]
        var workingDirectory: String?
        var standardInput: Int32
        var standardOutput: Int32
        var standardError: Int32
    }

    struct SpawnFailure: Error {
        let message: String
    }

    static func spawn(_ request: Request) -> Result<pid_t, SpawnFailure> {
        let name = request.argv.first ?? request.executable
        if let problem = invalidStrings(request) {
            return .failure(SpawnFailure(message: "Could not start \(name): \(problem)."))
        }

        var actions = posix_spawn_file_actions_t()
        guard posix_spawn_file_actions_init(&actions) == 0 else {
            return .failure(SpawnFailure(message: "Could not start \(name): \(SystemCallError("posix_spawn_file_actions_init"))."))
        }
        defer { posix_spawn_file_actions_destroy(&actions) }

        var attributes = posix_spawnattr_t()
        guard posix_spawnattr_init(&attributes) == 0 else {
            return .failure(SpawnFailure(message: "Could not start \(name): \(SystemCallError("posix_spawnattr_init"))."))
        }
        defer { posix_spawnattr_destroy(&attributes) }

        var setup: Int32 = 0
        // dup2 clears close-on-exec on the copies, so only these three survive the exec.
        setup |= posix_spawn_file_actions_adddup2(&actions, request.standardInput, STDIN_FILENO)
        setup |= posix_spawn_file_actions_adddup2(&actions, request.standardOutput, STDOUT_FILENO)
        setup |= posix_spawn_file_actions_adddup2(&actions, request.standardError, STDERR_FILENO)
        if let addClosefrom = GNUExtensions.addClosefrom {
            setup |= addClosefrom(&actions, STDERR_FILENO + 1)
        }
        if let directory = request.workingDirectory {
            guard let addChdir = GNUExtensions.addChdir else {
                return .failure(SpawnFailure(message: "Could not start \(name) in \(directory): this C library cannot set a child's working directory (needs glibc 2.29 or later)."))
            }
            setup |= directory.withCString { addChdir(&actions, $0) }
        }

        // A new process group (pgid = child's pid) so the whole tree can be killed with kill(-pid).
        setup |= posix_spawnattr_setpgroup(&attributes, 0)
        // The child must not inherit the worker's blocked signals (the runner thread blocks SIGPIPE)
        // or ignored ones; every signal goes back to its default action.
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        setup |= posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        setup |= posix_spawnattr_setsigdefault(&attributes, &allSignals)
        setup |= posix_spawnattr_setflags(
            &attributes,
            Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        )
        guard setup == 0 else {
            return .failure(SpawnFailure(message: "Could not start \(name): preparing posix_spawn failed."))
        }

        let environment = request.environment.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let result = withCStringArray(request.argv) { argv in
            withCStringArray(environment) { envp in
                posix_spawn(&pid, request.executable, &actions, &attributes, argv, envp)
            }
        }
        guard result == 0 else {
            let place = request.workingDirectory.map { " in \($0)" } ?? ""
            let reason = String(cString: strerror(result))
            return .failure(SpawnFailure(message: "Could not start \(name) (\(request.executable))\(place): \(reason)."))
        }
        return .success(pid)
    }

    /// C strings end at the first NUL, so such a string would silently run something else.
    private static func invalidStrings(_ request: Request) -> String? {
        if request.argv.contains(where: { $0.utf8.contains(0) }) { return "an argument contains a NUL byte" }
        for (key, value) in request.environment {
            if key.isEmpty || key.utf8.contains(0) || key.contains("=") {
                return "the environment variable name \"\(key)\" is invalid"
            }
            if value.utf8.contains(0) { return "the environment variable \(key) contains a NUL byte" }
        }
        if request.workingDirectory?.utf8.contains(0) == true { return "the working directory contains a NUL byte" }
        return nil
    }

    private static func withCStringArray<Result>(
        _ strings: [String],
        _ body: ([UnsafeMutablePointer<CChar>?]) -> Result
    ) -> Result {
        var pointers = strings.map { strdup($0) }
        defer { for pointer in pointers { free(pointer) } }
        pointers.append(nil)
        return body(pointers)
    }
}
