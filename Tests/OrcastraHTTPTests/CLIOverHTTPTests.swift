import Foundation
import OrcastraTesting
import Testing

/// `orcastra --api-url URL --api-token T …` against the built orchestrator on a real port, beside
/// the same command over SQL (`--database-url`): the same output and the same exit code.
@Suite(.timeLimit(.minutes(4)))
struct CLIOverHTTPTests {
    struct Both {
        var sql: (status: Int32, out: String, err: String)
        var http: (status: Int32, out: String, err: String)
    }

    /// Runs `arguments` both ways.
    static func both(_ fixture: APIFixture, _ arguments: [String], token: String, input: String? = nil) async throws -> Both {
        let tool = CommandLineTool("orcastra")
        let sql = try await tool.run(arguments + ["--database-url", fixture.cluster.url], environment: ["ORCASTRA_API_URL": ""], input: input)
        let http = try await tool.run(["--api-url", fixture.base, "--api-token", token] + arguments,
                                      environment: ["ORCASTRA_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"], input: input)
        return Both(sql: (sql.status, sql.standardOutput, sql.standardError), http: (http.status, http.standardOutput, http.standardError))
    }

    static func expectSame(_ result: Both, status: Int32, _ comment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.sql.status == status, "SQL \(comment): \(result.sql)", sourceLocation: sourceLocation)
        #expect(result.http.status == status, "HTTP \(comment): \(result.http)", sourceLocation: sourceLocation)
        #expect(withoutRelativeTimes(result.http.out) == withoutRelativeTimes(result.sql.out), "\(comment): standard output differs",
                sourceLocation: sourceLocation)
        #expect(withoutClockTimes(result.http.err) == withoutClockTimes(result.sql.err), "\(comment): standard error differs",
                sourceLocation: sourceLocation)
    }

    /// Progress lines start with the local time (`14:03:46 error: …`); the two runs may fall in
    /// different seconds, so the times are masked before comparing.
    static func withoutClockTimes(_ text: String) -> String {
        text.replacing(#/(?m)^\d\d:\d\d:\d\d /#, with: "HH:MM:SS ")
    }

    /// Tables say how far a time is from now (`(in 712h44m)`, `(3m ago)`); the two runs may fall in
    /// different minutes, so those are masked before comparing.
    static func withoutRelativeTimes(_ text: String) -> String {
        text.replacing(#/\((in )?[0-9]+[hms][0-9hms]*( ago)?\)/#, with: "(…)")
    }

    /// The same command both ways prints the same and exits the same, for successes and for each
    /// kind of refusal.
    @Test func sameOutputAndExitCodes() async throws {
        let fixture = try await APIFixture()
        defer { Task { await fixture.shutdown() } }
        let token = try await fixture.admin()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("api-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("order.yaml").path
        try APIFixture.diamond.write(toFile: file, atomically: true, encoding: .utf8)

        // Registered over SQL first, so both ways then find it unchanged.
        let first = try await CommandLineTool("orcastra").run(["template", "register", file, "--database-url", fixture.cluster.url])
        #expect(first.status == 0, "\(first.output)")
        Self.expectSame(try await Self.both(fixture, ["template", "register", file], token: token), status: 0, "template register (unchanged)")
        Self.expectSame(try await Self.both(fixture, ["template", "register", file, "--json"], token: token), status: 0, "template register --json")
        Self.expectSame(try await Self.both(fixture, ["template", "list"], token: token), status: 0, "template list")
        Self.expectSame(try await Self.both(fixture, ["template", "list", "--json"], token: token), status: 0, "template list --json")
        Self.expectSame(try await Self.both(fixture, ["template", "show", "shop/order"], token: token), status: 0, "template show")
        Self.expectSame(try await Self.both(fixture, ["template", "show", "shop/order@1.0.0", "--json"], token: token), status: 0, "template show --json")
        Self.expectSame(try await Self.both(fixture, ["template", "show", "shop/order", "--source"], token: token), status: 0, "template show --source")
        Self.expectSame(try await Self.both(fixture, ["template", "show", "shop/ordr"], token: token), status: 66, "template show of an unknown template")

        // Submissions: a new task each way (ids differ), then the refusals.
        let submitted = try await Self.both(fixture, ["submit", "shop/order", "--context", #"{"order_id": 12345678901234567890123}"#, "--idempotency-key", "k-1"], token: token)
        #expect(submitted.sql.status == 0 && submitted.http.status == 0, "\(submitted)")
        let sqlTask = submitted.sql.out.trimmingCharacters(in: .whitespacesAndNewlines)
        // The same key: the HTTP submission found the SQL one's task, and says so the same way.
        #expect(submitted.http.out == submitted.sql.out, "an idempotency key matches across both ways")
        #expect(submitted.http.err == "note: task \(sqlTask) already has idempotency key 'k-1'; no new task was made (it runs shop/order@1.0.0).\n")
        #expect(UUID(uuidString: sqlTask) != nil)
        Self.expectSame(try await Self.both(fixture, ["submit", "shop/nope"], token: token), status: 66, "unknown template")
        Self.expectSame(try await Self.both(fixture, ["submit", "shop/order", "--context", #"{"order_id": "x"}"#], token: token), status: 65, "schema violation")
        Self.expectSame(try await Self.both(fixture, ["submit", "shop/order", "--context", "{"], token: token), status: 65, "malformed context (checked before sending)")
        Self.expectSame(try await Self.both(fixture, ["submit", "shop/order@1.0.0", "--context", #"{"order_id": 1}"#, "--idempotency-key", "k-1", "--json"], token: token),
                        status: 0, "idempotent submit --json")

        // The task both ways: every digit of the context survives the trip.
        Self.expectSame(try await Self.both(fixture, ["task", "show", sqlTask, "--json"], token: token), status: 0, "task show --json")
        // A running task's "Duration" counts to now, so it is left out of the comparison.
        for arguments in [["task", "show", sqlTask], ["task", "show", sqlTask, "--attempts"]] {
            var result = try await Self.both(fixture, arguments, token: token)
            result.sql.out = result.sql.out.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("Duration") }.joined(separator: "\n")
            result.http.out = result.http.out.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("Duration") }.joined(separator: "\n")
            Self.expectSame(result, status: 0, "\(arguments.joined(separator: " "))")
            #expect(result.http.out.contains("No live worker serves namespace shop"), "the hint comes over HTTP too: \(result.http.out)")
        }
        let shown = try await Self.both(fixture, ["task", "show", sqlTask, "--json"], token: token)
        #expect(shown.http.out.contains("12345678901234567890123"), "\(shown.http.out)")
        Self.expectSame(try await Self.both(fixture, ["task", "events", sqlTask], token: token), status: 0, "task events")
        Self.expectSame(try await Self.both(fixture, ["task", "show", "0b6f1c1e-6a2f-4c1e-9d1a-2f3b4c5d6e7f"], token: token), status: 66, "unknown task")
        Self.expectSame(try await Self.both(fixture, ["task", "show", "not-a-uuid"], token: token), status: 65, "not a task id")
        Self.expectSame(try await Self.both(fixture, ["task", "list", "--json"], token: token), status: 0, "task list --json")
        Self.expectSame(try await Self.both(fixture, ["task", "list", "--limit", "1"], token: token), status: 0, "task list, one page")
        Self.expectSame(try await Self.both(fixture, ["task", "list", "--state", "complete"], token: token), status: 0, "task list, none match")

        // Steps: the first step is queued (no worker runs here), so neither retry nor resolve applies.
        let detail = try await fixture.object("GET", "/v1/tasks/\(sqlTask)", token: token).2
        let steps = try #require(detail["steps"] as? [[String: Any]])
        let charge = try #require(steps.first?["id"] as? Int)
        Self.expectSame(try await Self.both(fixture, ["step", "retry", "\(charge)"], token: token), status: 75, "retry of a step not in error")
        Self.expectSame(try await Self.both(fixture, ["step", "resolve", "\(charge)", "--result", "{}"], token: token), status: 75, "resolve of a queued step")
        Self.expectSame(try await Self.both(fixture, ["step", "retry", "987654321"], token: token), status: 66, "unknown step")
        Self.expectSame(try await Self.both(fixture, ["step", "resolve", "987654321", "--result", "{}"], token: token), status: 66, "resolve of an unknown step")

        // Cancel: one each way (the outputs name their own task), then again: both finished.
        let other = try await Self.both(fixture, ["submit", "shop/order", "--context", #"{"order_id": 2}"#], token: token)
        let httpTask = other.http.out.trimmingCharacters(in: .whitespacesAndNewlines)
        let sqlCancel = try await CommandLineTool("orcastra").run(["task", "cancel", sqlTask, "--database-url", fixture.cluster.url])
        let httpCancel = try await CommandLineTool("orcastra").run(["--api-url", fixture.base, "--api-token", token, "task", "cancel", httpTask])
        #expect(sqlCancel.status == 0 && httpCancel.status == 0, "\(sqlCancel.output) \(httpCancel.output)")
        #expect(httpCancel.standardOutput == sqlCancel.standardOutput.replacingOccurrences(of: sqlTask, with: httpTask))
        Self.expectSame(try await Self.both(fixture, ["task", "cancel", sqlTask, "--json"], token: token), status: 0, "cancelling a cancelled task")
        Self.expectSame(try await Self.both(fixture, ["task", "wait", sqlTask], token: token), status: 3, "waiting for a cancelled task")
        Self.expectSame(try await Self.both(fixture, ["task", "show", sqlTask], token: token), status: 0, "task show of a cancelled task")
    }

    /// What cannot go over HTTP says so (exit 64) without touching any database; a missing or
    /// wrong token, an unreachable or malformed URL are named.
    @Test func refusalsOverHTTP() async throws {
        let fixture = try await APIFixture()
        defer { Task { await fixture.shutdown() } }
        let tool = CommandLineTool("orcastra")
        let unreachableDatabase = ["ORCASTRA_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"]

        let tokens = try await tool.run(["--api-url", fixture.base, "token", "list"], environment: unreachableDatabase)
        #expect(tokens.status == 64, "\(tokens.output)")
        #expect(tokens.standardError.contains("`orcastra token list` cannot go over the HTTP API"), "\(tokens.output)")

        let fromEnvironment = try await tool.run(["migrate"], environment: unreachableDatabase.merging(["ORCASTRA_API_URL": fixture.base]) { $1 })
        #expect(fromEnvironment.status == 64, "\(fromEnvironment.output)")
        #expect(fromEnvironment.standardError.contains("`orcastra migrate` cannot go over the HTTP API"), "\(fromEnvironment.output)")

        let both = try await tool.run(["--api-url", fixture.base, "task", "list", "--database-url", fixture.cluster.url])
        #expect(both.status == 64, "\(both.output)")
        #expect(both.standardError.contains("not both"), "\(both.output)")

        let noToken = try await tool.run(["--api-url", fixture.base, "task", "list"], environment: unreachableDatabase)
        #expect(noToken.status == 77, "\(noToken.output)")
        #expect(noToken.standardError.contains("--api-token"), "\(noToken.output)")

        let readOnly = try await fixture.token("tasks:read")
        let wrongScope = try await tool.run(["--api-url", fixture.base, "submit", "shop/order"],
                                            environment: unreachableDatabase.merging(["ORCASTRA_API_TOKEN": readOnly]) { $1 })
        #expect(wrongScope.status == 77, "\(wrongScope.output)")
        #expect(wrongScope.standardError.contains("tasks:write"), "\(wrongScope.output)")

        let closedPort = try APIFixture.freePort()
        let unreachable = try await tool.run(["--api-url", "http://127.0.0.1:\(closedPort)", "--api-token", readOnly, "task", "list"])
        #expect(unreachable.status == 69, "\(unreachable.output)")
        #expect(unreachable.standardError.contains("Cannot reach the Orcastra API at http://127.0.0.1:\(closedPort)"), "\(unreachable.output)")

        let malformed = try await tool.run(["--api-url", "127.0.0.1:8080", "task", "list"])
        #expect(malformed.status == 64, "\(malformed.output)")
        #expect(malformed.standardError.contains("is not an API address"), "\(malformed.output)")
    }
}
