import Foundation
import OrcastraPostgres
import OrcastraTesting
import Testing

/// Wrong command lines given to the built `orcastra`: each gets one clear message on standard
/// error, the exit code docs/cli.md documents, and writes nothing.
@Suite(.timeLimit(.minutes(5))) struct CLIArgumentTests {
    let orcastra = CommandLineTool("orcastra")

    struct Case: Sendable, CustomStringConvertible {
        var arguments: [String]
        var exit: Int32
        /// Words the message must contain.
        var message: String
        var input: String? = nil
        /// A parser or CLI bug found by this suite and reported; the case is expected to misbehave
        /// until it is fixed (then `withKnownIssue` fails and this should be removed).
        var knownIssue: String? = nil
        /// Whether to add `--database-url` (not to a command line that has no command).
        var database = true
        var description: String { arguments.joined(separator: " ") }
    }

    static let validID = "0b6f1c1e-6a2f-4c1e-9d1a-2f3b4c5d6e7f"

    static func cases(bigContextFile: String) -> [Case] {
        [
            Case(arguments: ["frobnicate"], exit: 64, message: "Unexpected argument 'frobnicate'", database: false),
            Case(arguments: ["task", "frobnicate", validID], exit: 64, message: "unexpected arguments: 'frobnicate'", database: false),
            Case(arguments: ["submit", "bad/one", "--frobnicate"], exit: 64, message: "Unknown option '--frobnicate'"),
            Case(arguments: ["submit"], exit: 64, message: "Missing expected argument '<template>'"),
            Case(arguments: ["task", "show"], exit: 64, message: "Missing expected argument"),
            Case(arguments: ["step", "resolve", "12"], exit: 64, message: "--result"),
            Case(arguments: ["submit", "bad/one", "--priority", "high"], exit: 64, message: "The value 'high' is invalid for '--priority <priority>'"),
            Case(arguments: ["submit", "bad/one", "--priority", "99999999999999999999"], exit: 64, message: "is invalid for '--priority <priority>'"),
            // `--priority` takes the next word whatever it is (so that `--priority -5` works): last on the line here.
            Case(arguments: ["submit", "bad/one", "--priority"], exit: 64, message: "Missing value for '--priority <priority>'", database: false),
            Case(arguments: ["submit", "bad/one", "--priority", "--wait"], exit: 64, message: "The value '--wait' is invalid for '--priority <priority>'"),
            Case(arguments: ["submit", "bad/one", "--in", "soon"], exit: 64, message: "The value 'soon' is invalid for '--in <duration>'"),
            Case(arguments: ["submit", "bad/one", "--in", "30"], exit: 64, message: "The value '30' is invalid for '--in <duration>'"),
            Case(arguments: ["submit", "bad/one", "--in", "-5m"], exit: 64, message: "--in <duration>"),
            Case(arguments: ["submit", "bad/one", "--in", "0s"], exit: 64, message: "The value '0s' is invalid for '--in <duration>'"),
            Case(arguments: ["submit", "bad/one", "--in", "99999999999h"], exit: 64, message: "--in <duration>"),
            Case(arguments: ["submit", "bad/one", "--at", "2026-05-01T02:00:00Z", "--in", "5m"], exit: 64, message: "Give the start once: --at TIME or --in DURATION, not both."),
            Case(arguments: ["submit", "bad/one", "--at", "tomorrow"], exit: 65, message: "--at"),
            Case(arguments: ["submit", "bad/one", "--context", "{}", "--context-file", "x.json"], exit: 64, message: "Give the context once"),
            Case(arguments: ["submit", "bad/one", "--timeout", "5m"], exit: 64, message: "--timeout only applies with --wait."),
            Case(arguments: ["task", "show", "abc"], exit: 65, message: "'abc' is not a task id: a task id is a UUID like"),
            Case(arguments: ["task", "show", "Robert'); DROP TABLE orcastra.tasks;--"], exit: 65, message: "is not a task id"),
            Case(arguments: ["task", "cancel", "123"], exit: 65, message: "'123' is not a task id"),
            Case(arguments: ["task", "wait", validID + "0"], exit: 65, message: "is not a task id"),
            Case(arguments: ["task", "show", validID], exit: 66, message: "No task with id \(validID)."),
            Case(arguments: ["step", "retry", "abc"], exit: 65, message: "'abc' is not a step id: a step id is a positive number."),
            Case(arguments: ["step", "resolve", "-1", "--result", "{}"], exit: 64, message: "Error: "),
            Case(arguments: ["step", "resolve", "12", "--result", "{]"], exit: 65, message: "is not valid JSON"),
            Case(arguments: ["step", "resolve", "12", "--result", "{\"a\": [1],}"], exit: 65, message: "is not valid JSON at line 1, column 10: trailing comma before '}'"),
            Case(arguments: ["step", "resolve", "12", "--result", "{\"a\": \"\\u0000\"}"], exit: 65, message: "NUL"),
            Case(arguments: ["task", "list", "--limit", "0"], exit: 64, message: "--limit must be between 1 and 1000."),
            Case(arguments: ["task", "list", "--state", "bogus"], exit: 65, message: "bogus"),
            Case(arguments: ["submit", "bad/one", "--context", "{\"order_id\": 42,}"], exit: 65, message: "The context given with --context is not valid JSON at line 1"),
            Case(arguments: ["submit", "bad/one", "--context", "[1, 2,]"], exit: 65, message: "is not valid JSON"),
            Case(arguments: ["submit", "bad/one", "--context", "{\"a\": \"\\u0000\"}"], exit: 65, message: "NUL"),
            Case(arguments: ["submit", "bad/one", "--context", "{a: 1}"], exit: 65, message: "is not valid JSON at line 1, column 2"),
            Case(arguments: ["submit", "bad/one", "--context", "NaN"], exit: 65, message: "is not valid JSON"),
            Case(arguments: ["submit", "bad/one", "--context", "1e999"], exit: 65, message: "is not valid JSON"),
            Case(arguments: ["submit", "bad/one", "--context", "{bad"], exit: 65, message: "is not valid JSON"),
            Case(arguments: ["submit", "bad/one", "--context", ""], exit: 65, message: "is not valid JSON: it is empty"),
            Case(arguments: ["submit", "bad/one", "--context", "-"], exit: 65, message: "The context on standard input is not valid JSON", input: "[1, 2"),
            Case(arguments: ["submit", "bad/one", "--context", String(repeating: "[", count: 100_000)], exit: 65, message: "is not valid JSON"),
            Case(arguments: ["submit", "bad/one", "--context", String(repeating: "[", count: 500) + String(repeating: "]", count: 500)], exit: 65,
                 message: "at line 1, column 129: nested deeper than 128 levels"),
            Case(arguments: ["submit", "bad/one", "--context-file", "/nonexistent/context.json"], exit: 66,
                 message: "Cannot read the context file /nonexistent/context.json: no such file; check the path."),
            // Said apart: the path was right, but it names a folder (it was "no such file or no permission").
            Case(arguments: ["submit", "bad/one", "--context-file", "/tmp"], exit: 66,
                 message: "Cannot read the context file /tmp: it is a folder; give a JSON file."),
            Case(arguments: ["step", "resolve", "12", "--result-file", "/nonexistent/result.json"], exit: 66,
                 message: "Cannot read the result file /nonexistent/result.json: no such file; check the path."),
            Case(arguments: ["submit", "bad/one", "--context-file", bigContextFile], exit: 65, message: "more than the limit of 1048576 bytes (1 MiB); nothing was written."),
            Case(arguments: ["submit", "one"], exit: 65, message: "'one' is not a template reference"),
            Case(arguments: ["submit", "Robert'); DROP TABLE orcastra.tasks;--/x"], exit: 65, message: "is not a template reference"),
            Case(arguments: ["submit", "bad/missing"], exit: 66, message: "No template bad/missing is registered."),
            Case(arguments: ["submit", "bad/one@9.9.9"], exit: 66, message: "No template bad/one@9.9.9 is registered."),
        ]
    }

    @Test func badArgumentsGiveAClearMessageTheDocumentedCodeAndWriteNothing() async throws {
        let database = try await BadInputDatabase()
        defer { Task { [pool = database.pool] in await pool.shutdown() } }
        try await database.register("namespace: bad\nname: one\nversion: 1.0.0\nsteps: [{name: a, handler: bad.a}]\n")
        let big = FileManager.default.temporaryDirectory.appendingPathComponent("orcastra-big-context-\(UUID().uuidString).json")
        try Data(("{\"blob\": \"" + String(repeating: "a", count: 1 << 20) + "\"}").utf8).write(to: big)
        defer { try? FileManager.default.removeItem(at: big) }

        let start = ContinuousClock.now
        var madeByKnownIssues = 0
        for test in Self.cases(bigContextFile: big.path) {
            let outcome = try await orcastra.run(test.arguments + (test.database ? ["--database-url", database.url] : []), input: test.input)
            let firstLine = outcome.standardError.split(separator: "\n").first.map(String.init) ?? ""
            print("orcastra \(test.description.prefix(80)) → \(outcome.status): \(firstLine.prefix(220))\(outcome.standardOutput.isEmpty ? "" : " [stdout: \(outcome.standardOutput.prefix(60).trimmingCharacters(in: .newlines))]")")
            #expect(!outcome.standardError.contains("Fatal error") && !outcome.standardError.contains("Stack dump"), "\(test)")
            let check = {
                #expect(outcome.status == test.exit, "\(test): \(outcome.standardError)")
                #expect(outcome.standardError.contains(test.message), "\(test): \(outcome.standardError.prefix(500))")
                #expect(firstLine.hasPrefix("error: ") || firstLine.hasPrefix("Error: "), "\(test): \(firstLine)")
                #expect(outcome.standardOutput.isEmpty, "\(test): \(outcome.standardOutput.prefix(300))")
            }
            if let knownIssue = test.knownIssue {
                withKnownIssue(Comment(rawValue: knownIssue)) { check() }
                if UUID(uuidString: outcome.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)) != nil { madeByKnownIssues += 1 }
            } else {
                check()
            }
        }
        print("\(Self.cases(bigContextFile: big.path).count) bad command lines in \(seconds(since: start)); \(madeByKnownIssues) task(s) made by known issues")
        // Nothing written, except the tasks the known issues above wrongly accept.
        let rows = try await database.writtenRows()
        #expect(rows == [madeByKnownIssues, madeByKnownIssues, 0, madeByKnownIssues, madeByKnownIssues])
        #expect(try await database.count("SELECT count(*) FROM orcastra.templates") == 1)
    }
}
