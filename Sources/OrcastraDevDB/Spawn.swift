import Foundation

/// posix_spawn with argv and environment built from Swift values, for `ProcessRunner` and
/// `BackgroundProcess` (Foundation's `Process` hung here when two children were awaited at once).
enum Spawn {
    /// Starts `executable` with `arguments`; `environment` nil inherits ours. `actions` sets up the
    /// child's standard streams.
    static func start(_ executable: String, _ arguments: [String], environment: [String: String]?,
                      actions: inout posix_spawn_file_actions_t) throws -> pid_t {
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { values in
            values.map { strdup("\($0.key)=\($0.value)") } + [nil]
        }
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp ?? [] { free(pointer) }
        }
        var pid: pid_t = 0
        let result = envp.map { posix_spawn(&pid, executable, &actions, nil, argv, $0) }
            ?? posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard result == 0 else {
            throw LocalPostgresError.failed(step: "start \(executable)", output: String(cString: strerror(result)))
        }
        return pid
    }

    /// The exit code of a `waitpid` status (128 + n for signal n): WIFEXITED/WEXITSTATUS, which
    /// Swift does not import.
    static func exitCode(_ status: Int32) -> Int32 {
        (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
