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

        let pid = try Spawn.start(executable, arguments, environment: environment, actions: &actions)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { break }
        }
        return Outcome(status: Spawn.exitCode(status),
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
