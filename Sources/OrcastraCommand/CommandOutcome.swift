/// What a command did: how it ended and what it printed.
///
/// The runner never throws: a command that cannot start is an outcome like any other, so a worker
/// records it against the step instead of handling a separate error path.
public struct CommandOutcome: Sendable {
    public enum Termination: Sendable, Equatable {
        /// The process exited with this status.
        case exited(Int32)
        /// The process was killed by this signal (not by the runner).
        case signaled(Int32)
        /// The timeout expired; the process group was killed.
        case timedOut
        /// The calling task was cancelled; the process group was killed (or never started).
        case cancelled
        /// Nothing ran. The message is one sentence for a person, naming the executable.
        case failedToStart(String)
    }

    public var termination: Termination
    /// The first `outputLimit` bytes of stdout.
    public var standardOutput: [UInt8]
    /// The last `errorLimit` bytes of stderr.
    public var standardError: [UInt8]
    /// Stdout was longer than `outputLimit`.
    public var outputTruncated: Bool
    /// Stderr was longer than `errorLimit`.
    public var errorTruncated: Bool
    /// From spawn until the process was reaped.
    public var duration: Duration

    public init(
        termination: Termination,
        standardOutput: [UInt8] = [],
        standardError: [UInt8] = [],
        outputTruncated: Bool = false,
        errorTruncated: Bool = false,
        duration: Duration = .zero
    ) {
        self.termination = termination
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.outputTruncated = outputTruncated
        self.errorTruncated = errorTruncated
        self.duration = duration
    }
}
