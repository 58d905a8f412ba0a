import ArgumentParser
import Foundation
import OrcastraClient
import OrcastraCommandLine
import OrcastraSchedules
import OrcastraStateMachines
import OrcastraTemplates

/// Parsing and formatting shared by the task commands: ids, times, durations, tables, JSON.
enum CLI {
    /// A task id, or an error that says what one looks like and where to find it.
    static func taskID(_ text: String) throws -> UUID {
        guard let id = UUID(uuidString: text.trimmingCharacters(in: .whitespaces)) else {
            throw CLIFailure(
                message: "'\(text)' is not a task id: a task id is a UUID like 0b6f1c1e-6a2f-4c1e-9d1a-2f3b4c5d6e7f. `orcastra task list` shows the ids of recent tasks.",
                exitCode: .invalidInput)
        }
        return id
    }

    /// A step id, or an error that says where to find one.
    static func stepID(_ text: String) throws -> Int64 {
        guard let id = Int64(text.trimmingCharacters(in: .whitespaces)), id > 0 else {
            throw CLIFailure(
                message: "'\(text)' is not a step id: a step id is a positive number. `orcastra task show TASK_ID` lists a task's steps with their ids.",
                exitCode: .invalidInput)
        }
        return id
    }

    /// An RFC 3339 / ISO 8601 time (see `Timestamp`); without an offset, in the local time zone.
    static func timestamp(_ text: String, option: String) throws -> Date {
        if let date = Timestamp.parse(text) { return date }
        throw CLIFailure(
            message: "\(option) '\(text)' is not a time. Write it like \(Timestamp.examples); without an offset it is in this machine's time zone (\(TimeZone.current.identifier)).",
            exitCode: .invalidInput)
    }

    /// Why `path` could not be read, in a few words that say what to fix.
    static func whyUnreadable(_ path: String) -> String {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { return "no such file; check the path" }
        return isFolder.boolValue ? "it is a folder; give a JSON file" : "this user may not read it (permission denied)"
    }

    /// `--context JSON`, `--context -` (standard input) or `--context-file FILE`; `{}` when none.
    static func readContext(_ context: String?, file contextFile: String?) throws -> JSONValue {
        if let contextFile {
            guard let data = FileManager.default.contents(atPath: contextFile) else {
                throw CLIFailure(message: "Cannot read the context file \(contextFile): \(whyUnreadable(contextFile)).",
                                 exitCode: .notFound)
            }
            return try JSONInput.parse(String(decoding: data, as: UTF8.self), source: "The context in \(contextFile)")
        }
        guard let context else { return .object([:]) }
        if context == "-" {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            return try JSONInput.parse(String(decoding: data, as: UTF8.self), source: "The context on standard input")
        }
        return try JSONInput.parse(context, source: "The context given with --context")
    }

    /// `--namespace` must be a valid namespace name; says why not and what the rule is.
    static func validateNamespaceOption(_ namespace: String?) throws {
        if let namespace, let problem = TemplateNames.problem(with: namespace, allowDots: false) {
            throw ValidationError("--namespace '\(namespace)' is invalid because \(problem); namespaces must \(TemplateNames.rule).")
        }
    }

    static func taskStates(_ texts: [String]) throws -> Set<TaskState> {
        try Set(texts.map { text in
            guard let state = TaskState(rawValue: text) else {
                throw CLIFailure(
                    message: "'\(text)' is not a task state. Use one of: \(TaskState.allCases.map(\.rawValue).joined(separator: ", ")).",
                    exitCode: .invalidInput)
            }
            return state
        })
    }

    /// A client for one command, shut down when the command is done whatever happens.
    static func withClient<Value>(_ database: DatabaseOptions, _ body: (OrcastraClient) async throws -> Value) async throws -> Value {
        let client = OrcastraClient(conninfo: try await database.conninfo(), maximumConnections: 2)
        do {
            let value = try await body(client)
            await client.shutdown()
            return value
        } catch {
            await client.shutdown()
            throw error
        }
    }

    static var standardErrorIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }

    static func writeError(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    /// `850ms`, `12.3s`, `4m05s`, `2h03m`.
    static func duration(_ seconds: Double?) -> String {
        guard let seconds, seconds >= 0 else { return "-" }
        if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
        if seconds < 60 { return String(format: "%.1fs", seconds) }
        let whole = Int(seconds)
        if whole < 3600 { return String(format: "%dm%02ds", whole / 60, whole % 60) }
        return String(format: "%dh%02dm", whole / 3600, whole / 60 % 60)
    }

    static func time(_ date: Date?) -> String {
        guard let date else { return "-" }
        return date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    /// Left-aligned columns separated by two spaces; cells are cut to one line.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let cleaned = rows.map { $0.map { $0.replacingOccurrences(of: "\n", with: " ") } }
        var widths = header.map(\.count)
        for row in cleaned {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padded(to: widths[index])
            }.joined(separator: "  ")
        }
        return ([line(header)] + cleaned.map(line)).joined(separator: "\n")
    }

    /// What explains a failure in one line: the last meaningful line of a multi-line error (a
    /// Python traceback ends with the exception), after the worker's own summary of the first line
    /// ("the command exited 1: Traceback …" → "the command exited 1: ValueError: bad input").
    static func errorSummary(_ text: String?) -> String? {
        guard let text else { return nil }
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard lines.count > 1, let last = lines.last else { return lines.first }
        if let colon = lines[0].range(of: ": ") { return String(lines[0][..<colon.upperBound]) + last }
        return last
    }

    /// "1 step", "3 steps": a number with its noun in the right form.
    static func count(_ number: Int, _ singular: String, _ plural: String) -> String {
        "\(number) \(number == 1 ? singular : plural)"
    }

    /// While a task is watched (`submit --wait`, `task wait`), Ctrl-C stops the watching, not the
    /// task: say so, and how to watch it again, then exit 130 as an interrupted program does.
    static func interruptStopsWatching(_ id: String) -> any DispatchSourceSignal {
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler {
            writeError("\nStopped watching; task \(id) keeps running. Watch it again with `orcastra task wait \(id)`, or stop it with `orcastra task cancel \(id)`.\n")
            exit(130)
        }
        source.resume()
        return source
    }

    /// While a task is watched: if after a few seconds some of its steps still wait in a namespace
    /// no live worker serves, say so once on standard error (a watch would otherwise sit at
    /// "queued" with no clue). Cancel the returned task when the watch ends.
    static func hintUnservedNamespaces(_ client: any TaskService, task id: UUID, after delay: Duration = .seconds(3)) -> Task<Void, Never> {
        Task {
            try? await Task.sleep(for: delay)
            guard !Task.isCancelled, let detail = try? await client.task(id),
                  let unserved = try? await client.unservedNamespaces(in: detail), !unserved.isEmpty, !Task.isCancelled else { return }
            for (namespace, steps) in unserved {
                let names = steps.prefix(3).map(\.name).joined(separator: ", ") + (steps.count > 3 ? " and \(steps.count - 3) more" : "")
                writeError("\nnote: no live worker serves namespace \(namespace), where \(names) \(steps.count == 1 ? "waits" : "wait"): start one with `orcastra-worker --namespace \(namespace)`.\n")
            }
        }
    }

    static func abbreviate(_ text: String?, to length: Int = 60) -> String {
        guard let text, !text.isEmpty else { return "" }
        let oneLine = text.replacingOccurrences(of: "\n", with: " ")
        return oneLine.count > length ? String(oneLine.prefix(length - 1)) + "…" : oneLine
    }

    /// The client's values carry their own snake_case keys; a key strategy here would also
    /// rewrite the keys inside contexts and results, which are the user's data.
    static func printJSON<Value: Encodable>(_ value: Value) throws {
        print(try jsonText(value))
    }

    /// JSON text as `printJSON` prints it; `pretty: false` for one line.
    static func jsonText<Value: Encodable>(_ value: Value, pretty: Bool = true) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        }
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

extension String {
    /// Padded with spaces to `width` characters (never cut). Foundation's `padding(toLength:)`
    /// counts UTF-16 units and cuts: it dropped the last character of a cell holding an emoji.
    func padded(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
