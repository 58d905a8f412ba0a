import Foundation

/// Runs a program to completion and collects its output.
///
/// Written with posix_spawn and waitpid rather than Foundation's `Process`, whose `waitUntilExit`
/// was seen here to hang when two processes were waited for at once. Output goes to temporary
/// files, so a chatty child can never block on a full pipe.
public enum ProcessRunner {
    public struct Outcome: Sendable {
        public var status: Int32
        public var standardOutput: String
        public var standardError: String
        /// Both streams, for messages.
        public var output: String { standardOutput + standardError }
    }

    /// - Parameters:
    ///   - environment: the child's whole environment; nil inherits ours.
    ///   - input: text for the child's standard input; nil gives it /dev/null.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                           input: String? = nil) throws -> Outcome {
        let base = NSTemporaryDirectory() + "orcastra-run-\(getpid())-\(UInt64.random(in: 0..<UInt64.max))"
        let outPath = base + ".out", errPath = base + ".err", inPath = base + ".in"
        defer { unlink(outPath); unlink(errPath); unlink(inPath) }
        if let input { try input.write(toFile: inPath, atomically: false, encoding: .utf8) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, input == nil ? "/dev/null" : inPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { values in
            values.map { strdup("\($0.key)=\($0.value)") } + [nil]
        }
        defer { for pointer in envp ?? [] { free(pointer) } }
        var pid: pid_t = 0
        let spawned = envp.map { posix_spawn(&pid, executable, &actions, nil, argv, $0) }
            ?? posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else {
            throw LocalPostgresError.failed(step: "start \(executable)", output: String(cString: strerror(spawned)))
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { break }
        }
        // WIFEXITED / WEXITSTATUS, which Swift does not import.
        let exitCode: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Outcome(status: exitCode,
                       standardOutput: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                       standardError: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }
}

/// Runs blocking work on a thread of its own, so it never occupies Swift's cooperative pool.
public func onDedicatedThread<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) async throws -> Value {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try body() })
        }
        thread.name = "orcastra-blocking"
        thread.start()
    }
}
