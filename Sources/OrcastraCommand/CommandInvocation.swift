#if canImport(Glibc)
import Glibc
#endif

/// Everything needed to run one `command` step: what to execute, with what, and within which limits.
///
/// The environment is the child's *whole* environment rather than additions to the worker's, so a step
/// sees exactly what its template declared and never a worker's secrets by accident. Use
/// ``CommandInvocation/parentEnvironment()`` when inheriting is what you want.
public struct CommandInvocation: Sendable {
    /// The program and its arguments. `argv[0]` is looked up on the `PATH` of ``environment`` (or the
    /// worker's `PATH` when the environment has none) unless it contains a `/`.
    public var argv: [String]
    /// The child's full environment.
    public var environment: [String: String]
    /// The directory the child starts in; `nil` keeps the worker's.
    public var workingDirectory: String?
    /// Written to the child's stdin, after which stdin is closed so readers see end-of-file.
    public var standardInput: [UInt8]
    /// Measured from spawn. On expiry the child's whole process group is killed.
    public var timeout: Duration
    /// Maximum bytes of stdout kept. The *first* bytes are kept: the start of output is what a
    /// result parser needs. Output beyond the limit is still read (so the child never blocks) but dropped.
    public var outputLimit: Int
    /// Maximum bytes of stderr kept. The *last* bytes are kept: the end of stderr is what explains a failure.
    public var errorLimit: Int

    public init(
        argv: [String],
        environment: [String: String] = [:],
        workingDirectory: String? = nil,
        standardInput: [UInt8] = [],
        timeout: Duration,
        outputLimit: Int = 1 << 20,
        errorLimit: Int = 64 << 10
    ) {
        self.argv = argv
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.standardInput = standardInput
        self.timeout = timeout
        self.outputLimit = outputLimit
        self.errorLimit = errorLimit
    }

    /// The worker's own environment, for steps that should inherit it.
    public static func parentEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var cursor = environ
        while let entry = cursor.pointee {
            let text = String(cString: entry)
            if let separator = text.firstIndex(of: "=") {
                result[String(text[..<separator])] = String(text[text.index(after: separator)...])
            }
            cursor += 1
        }
        return result
    }
}
