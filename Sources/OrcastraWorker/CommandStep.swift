import Foundation
import OrcastraCommand
import OrcastraTemplates

/// The built-in `command` handler: runs a step's argv as a process (docs/templates.md, "The command
/// convention"). Exit 0 = success with stdout as the JSON result, 78 = permanent failure, anything
/// else or a timeout = retryable failure; stderr's end becomes the error message.
enum CommandStep {
    /// Exit code that means "do not retry" (EX_CONFIG from sysexits.h).
    static let permanentExitCode: Int32 = 78

    static func run(_ spec: CommandSpec, input: JSONValue, step: StepContext, timeout: Duration,
                    limits: ResultLimits) async throws -> JSONValue {
        let inputText = input.jsonText
        let inputFile = NSTemporaryDirectory() + "orcastra-input-\(step.taskID.uuidString.lowercased())-\(step.stepName)-\(step.attempt).json"
        try inputText.write(toFile: inputFile, atomically: true, encoding: .utf8)
        defer { unlink(inputFile) }

        var environment = ProcessInfo.processInfo.environment
        for (key, value) in spec.env { environment[key] = value }
        environment["ORCASTRA_TASK_ID"] = step.taskID.uuidString.lowercased()
        environment["ORCASTRA_STEP_NAME"] = step.stepName
        environment["ORCASTRA_ATTEMPT"] = String(step.attempt)
        environment["ORCASTRA_MAX_ATTEMPTS"] = String(step.maxAttempts)
        environment["ORCASTRA_IDEMPOTENCY_KEY"] = step.idempotencyKey
        environment["ORCASTRA_INPUT"] = inputFile
        // The attempt's W3C trace context, so the command can continue the trace (docs/tracing.md);
        // never one the worker itself was started with.
        environment["TRACEPARENT"] = step.traceparent
        environment["TRACESTATE"] = nil

        let outcome = await CommandRunner.run(CommandInvocation(
            argv: spec.argv, environment: environment, workingDirectory: spec.workingDirectory,
            standardInput: Array(inputText.utf8), timeout: timeout,
            outputLimit: limits.maximumResultBytes, errorLimit: limits.maximumErrorBytes))
        let stderr = String(decoding: outcome.standardError, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let detail = stderr.isEmpty ? "" : ": \(stderr)"
        switch outcome.termination {
        case .exited(0):
            if outcome.outputTruncated {
                throw StepFailure.permanent("the command's output passed the result limit of \(limits.maximumResultBytes) bytes")
            }
            let text = String(decoding: outcome.standardOutput, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if text.isEmpty { return .null }
            do {
                return try JSONValue(parsing: text)
            } catch let error where error.isTooDeep {
                // The same output again will be just as deep: retrying cannot help.
                throw StepFailure.permanent("result not storable: the command's output is \(error)")
            } catch {
                throw StepFailure.retryable("the command exited 0 but its output is not JSON (line \(error.line), column \(error.column): \(error.problem)): \(text.prefix(200))")
            }
        case .exited(permanentExitCode):
            throw StepFailure.permanent("the command exited \(permanentExitCode) (permanent failure)\(detail)")
        case .exited(let code):
            throw StepFailure.retryable("the command exited \(code)\(detail)")
        case .signaled(let signal):
            throw StepFailure.retryable("the command was killed by signal \(signal)\(detail)")
        case .timedOut:
            throw CommandTimedOut(message: "the command timed out after \(TemplateDuration(milliseconds: timeout.milliseconds))\(detail)")
        case .cancelled:
            throw CancellationError()
        case .failedToStart(let message):
            throw StepFailure.permanent("the command could not start: \(message)")
        }
    }
}

/// Sizes the worker refuses to store, so one step cannot bloat the database.
public struct ResultLimits: Sendable {
    /// A result (a handler's output, a command's stdout) larger than this fails the step.
    public var maximumResultBytes = 1 << 20
    /// The end of a failed command's stderr kept as the step's error.
    public var maximumErrorBytes = 16 << 10
    public init() {}
}

extension Duration {
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}

/// A command stopped by its step's timeout: a retryable failure, counted as timed out.
struct CommandTimedOut: Error {
    var message: String
}
