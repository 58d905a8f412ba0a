import Foundation
import OrcastraDevDB

/// Runs one of the package's built executables, as a user would, for end-to-end tests.
public struct CommandLineTool: Sendable {
    public let path: String

    /// The executable `name` from the same build folder as the running test bundle.
    public init(_ name: String) {
        let folder = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        // On Linux the test binary sits in the build folder; on macOS it is inside an .xctest bundle.
        let candidates = [folder, folder.deletingLastPathComponent(), folder.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()]
        path = candidates.map { $0.appendingPathComponent(name).path }
            .first { FileManager.default.isExecutableFile(atPath: $0) } ?? folder.appendingPathComponent(name).path
    }

    /// Runs it with `arguments`, our environment plus `environment`, and optional standard input.
    public func run(_ arguments: [String], environment: [String: String] = [:], input: String? = nil) async throws -> ProcessRunner.Outcome {
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        // Never fall through to a developer's own database by accident.
        if environment["DATABASE_URL"] == nil { merged.removeValue(forKey: "DATABASE_URL") }
        let path = self.path
        let finalEnvironment = merged
        return try await onDedicatedThread { try ProcessRunner.run(path, arguments, environment: finalEnvironment, input: input) }
    }
}
