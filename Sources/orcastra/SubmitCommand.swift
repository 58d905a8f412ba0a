import ArgumentParser
import Foundation
import OrcastraClient
import OrcastraCommandLine
import OrcastraStateMachines
import OrcastraStore
import OrcastraTemplates

/// `orcastra submit`: start a task, optionally watching it to the end.
struct SubmitCommand: AsyncParsableCommand, WorksOverHTTP {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit a task: a template plus a JSON context.",
        discussion: """
            Prints the new task's id. With --wait, shows the task's progress until it settles and \
            exits 0 when it completed, 2 when it failed (a step is in error), 3 when it was \
            cancelled and 4 when --timeout passed first.

            Examples:
              orcastra submit examples/linear
              orcastra submit shop/checkout@1.2.0 --context '{"order_id": 42}' --wait
              orcastra submit shop/checkout --context-file order.json --idempotency-key o-42
              echo '{"order_id": 42}' | orcastra submit shop/checkout --context -
              orcastra submit reports/nightly --in 5m --priority 10
              orcastra submit reports/nightly --at 2026-05-01T02:00:00Z --json
              orcastra submit shop/checkout@1.0.0 --allow-deprecated
            """
    )

    @Argument(help: ArgumentHelp("The template: NAMESPACE/NAME (its default version, else its highest release that is not deprecated) or NAMESPACE/NAME@VERSION.",
                                 valueName: "template"))
    var template: String

    @Option(help: ArgumentHelp("The task's context as JSON, or - to read it from standard input.", valueName: "json"))
    var context: String?

    @Option(help: ArgumentHelp("Read the context from this JSON file.", valueName: "file"))
    var contextFile: String?

    @Option(help: ArgumentHelp("Submitting the same template again with the same key returns the first task instead of making another.",
                               valueName: "key"))
    var idempotencyKey: String?

    @Option(help: ArgumentHelp("Run the task's steps as spans of this W3C trace context (00-<trace id>-<parent span id>-<flags>); default: $TRACEPARENT, else a new trace. See docs/tracing.md.",
                               valueName: "traceparent"))
    var traceparent: String?

    @Flag(help: "Run a deprecated version; only with a pinned one (NAMESPACE/NAME@VERSION).")
    var allowDeprecated = false

    // Unconditional: `--priority -5` is a value, not an unknown flag.
    @Option(parsing: .unconditional, help: "Higher runs first when workers are busy; negative runs after the default 0, e.g. --priority -5.")
    var priority: Int = 0

    @Option(name: .customLong("at"),
            help: ArgumentHelp("Start no earlier than this RFC 3339 time: 2026-05-01T02:00:00Z, 2026-05-01T04:00+02:00, or without an offset in this machine's time zone (2026-05-01T02:00, 2026-05-01).", valueName: "time"))
    var startTime: String?

    @Option(name: .customLong("in"), parsing: .unconditional,
            help: ArgumentHelp("Start after this delay, e.g. 30s, 5m, 2h, 1h30m (units: h, m, s, ms).", valueName: "duration"),
            transform: DurationArgument.parse)
    var delay: DurationArgument?

    @Flag(help: "Watch the task until it completes, fails or is cancelled; the exit code tells which.")
    var wait = false

    @Option(help: ArgumentHelp("With --wait: give up after this long (exit code 4), e.g. 10m.", valueName: "duration"),
            transform: DurationArgument.parse)
    var timeout: DurationArgument?

    @Flag(help: "Print JSON for scripts: the submission, or with --wait the finished task.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        if context != nil && contextFile != nil {
            throw ValidationError("Give the context once: --context or --context-file, not both.")
        }
        if startTime != nil && delay != nil {
            throw ValidationError("Give the start once: --at TIME or --in DURATION, not both.")
        }
        if let idempotencyKey, idempotencyKey.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            // An unset shell variable ("--idempotency-key "$KEY"") would fold every submission into one task.
            throw ValidationError("--idempotency-key is empty; give a key that names this piece of work, or leave the option out.")
        }
        guard Int(Int32.min)...Int(Int32.max) ~= priority else {
            throw ValidationError("--priority must be between \(Int32.min) and \(Int32.max).")
        }
        if timeout != nil && !wait {
            throw ValidationError("--timeout only applies with --wait.")
        }
        if let traceparent, Traceparent.normalized(traceparent) == nil {
            throw ValidationError("--traceparent '\(traceparent)' is not a W3C trace context: give 00-<32 hex digits trace id>-<16 hex digits parent span id>-<2 hex digits flags>, ids not all zero, or leave the option out for a new trace.")
        }
        if allowDeprecated && !template.contains("@") {
            throw ValidationError("--allow-deprecated applies to a pinned version (NAMESPACE/NAME@VERSION): a reference without a version never takes a deprecated one.")
        }
    }

    func run() async throws {
        let reference = try TemplateReference(parsing: template)
        let contextValue = try readContext()
        var runAt: Date?
        if let startTime { runAt = try CLI.timestamp(startTime, option: "--at") }
        if let delay {
            let components = delay.duration.components
            runAt = Date().addingTimeInterval(Double(components.seconds) + Double(components.attoseconds) / 1e18)
        }
        try await CLI.withService(database) { client in
            try await submit(TaskRequest(template: reference, context: contextValue, idempotencyKey: idempotencyKey,
                                         priority: priority, runAt: runAt, allowDeprecated: allowDeprecated,
                                         traceparent: traceparent ?? Self.inheritedTraceparent()), with: client)
        }
    }

    /// `TRACEPARENT` from the environment (a traced script, a command step) when it is a valid
    /// W3C trace context; an unusable one starts a new trace, as W3C asks of a receiver.
    static func inheritedTraceparent() -> String? {
        ProcessInfo.processInfo.environment["TRACEPARENT"].flatMap(Traceparent.normalized)
    }

    private func submit(_ request: TaskRequest, with client: any TaskService) async throws {
        let creation = try await client.submit(request)
        let id = creation.taskID.uuidString.lowercased()
        if !creation.created, let idempotencyKey {
            let family = "\(request.template.namespace)/\(request.template.name)"
            if creation.contextDiffers {
                CLI.writeError("warning: task \(id) already has idempotency key '\(idempotencyKey)' for \(family), with another context; the context given now was not used and no new task was made (it runs \(creation.templateReference)). Use another key for a new task.\n")
            } else {
                CLI.writeError("note: task \(id) already has idempotency key '\(idempotencyKey)'; no new task was made (it runs \(creation.templateReference)).\n")
            }
        }
        guard wait else {
            if json {
                try CLI.printJSON(SubmitOutput(taskID: id, created: creation.created, template: creation.templateReference,
                                               contextDiffers: creation.contextDiffers))
            } else {
                print(id)
            }
            return
        }
        if !json { print(id) }
        let interrupt = CLI.interruptStopsWatching(id)
        let hint = CLI.hintUnservedNamespaces(client, task: creation.taskID)
        defer { interrupt.cancel(); hint.cancel() }
        let renderer = ProgressRenderer(interactive: CLI.standardErrorIsTerminal)
        let detail: TaskDetail
        do {
            detail = try await client.watch(creation.taskID, timeout: timeout?.duration) { renderer.show($0) }
            renderer.finish()
        } catch {
            renderer.finish()
            // The task as it stands, so a script can keep watching it or cancel it.
            if json, let timedOut = error as? ClientError, case .waitTimedOut = timedOut {
                try CLI.printJSON(try await client.task(creation.taskID))
            }
            throw error
        }
        if json {
            try CLI.printJSON(detail)
        } else {
            print(TaskSummaryText.outcome(of: detail))
        }
        try TaskSummaryText.exitStatus(of: detail)
    }

    private func readContext() throws -> JSONValue {
        try CLI.readContext(context, file: contextFile)
    }

    /// `template` is the task's own: for a key that matched, the version that task runs.
    struct SubmitOutput: Encodable {
        var taskID: String
        var created: Bool
        var template: String
        var contextDiffers: Bool
        enum CodingKeys: String, CodingKey {
            case taskID = "task_id", created, template, contextDiffers = "context_differs"
        }
    }
}

/// The words for a finished wait, shared by `submit --wait` and `task wait`.
enum TaskSummaryText {
    /// One line for a settled task, then what to do about failed steps.
    static func outcome(of detail: TaskDetail) -> String {
        let id = detail.id.uuidString.lowercased()
        let steps = "\(detail.finishedStepCount)/\(detail.steps.count) steps"
        let took = detail.duration().map { " in \(CLI.duration($0))" } ?? ""
        switch detail.state {
        case .complete:
            return "Task \(id) complete: \(steps)\(took)."
        case .resolvedManually:
            return "Task \(id) resolved manually: \(steps)\(took)."
        case .cancelled:
            return "Task \(id) cancelled (\(detail.stateReason)): \(steps) done."
        case .error:
            let failed = detail.failedSteps
            var lines = ["Task \(id) failed: \(steps) done; \(CLI.count(failed.count, "step", "steps")) in error."]
            // A few in full; many (a failed fan-out) in one line each, then what repairs them all.
            let detailed = failed.count <= 3
            for step in failed.prefix(detailed ? 3 : 10) {
                let error = CLI.abbreviate(CLI.errorSummary(step.lastError) ?? step.stateReason, to: detailed ? 200 : 100)
                lines.append("  \(step.name) (step \(step.id), attempt \(step.attempts) of \(step.maxAttempts)): \(error)")
                if detailed {
                    lines.append("    retry:   orcastra step retry \(step.id)")
                    lines.append("    resolve: orcastra step resolve \(step.id) --result JSON")
                }
            }
            if failed.count > 10 { lines.append("  … and \(failed.count - 10) more (`orcastra task show \(id)` lists them)") }
            if failed.count > 1 { lines.append("  retry all: orcastra task retry \(id)") }
            if !detailed { lines.append("  one step:  orcastra step show STEP_ID | step retry STEP_ID | step resolve STEP_ID --result JSON") }
            return lines.joined(separator: "\n")
        default:
            return "Task \(id) is \(detail.state.rawValue): \(steps) done."
        }
    }

    /// Throws the documented exit code for a task that did not complete.
    static func exitStatus(of detail: TaskDetail) throws {
        let id = detail.id.uuidString.lowercased()
        switch detail.state {
        case .error:
            throw CLIFailure(message: "Task \(id) failed. Fix the cause, then `orcastra task retry \(id)` (every failed step), `orcastra step retry STEP_ID` or `orcastra step resolve STEP_ID --result JSON`.",
                             exitCode: .taskFailed)
        case .cancelled:
            throw CLIFailure(message: "Task \(id) was cancelled.", exitCode: .taskCancelled)
        default:
            return
        }
    }
}
