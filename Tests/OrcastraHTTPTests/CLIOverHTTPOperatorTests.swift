import Foundation
import OrcastraPostgres
import OrcastraTesting
import Testing

/// The operator's commands over HTTP (`--api-url`) beside the same over SQL: `task cancel` with
/// filters, `step show`, `worker list`, the `--reason` given to a cancel, and `--wait` / `task wait`
/// following the task's event stream.
@Suite(.timeLimit(.minutes(4)))
struct CLIOverHTTPOperatorTests {
    static func both(_ fixture: APIFixture, _ arguments: [String], _ token: String) async throws -> CLIOverHTTPTests.Both {
        try await CLIOverHTTPTests.both(fixture, arguments, token: token)
    }

    static func expectSame(_ result: CLIOverHTTPTests.Both, status: Int32, _ comment: String,
                           sourceLocation: SourceLocation = #_sourceLocation) {
        CLIOverHTTPTests.expectSame(result, status: status, comment, sourceLocation: sourceLocation)
    }

    static let twoSteps = """
        namespace: apiwait
        name: two
        version: 1.0.0
        steps:
          - {name: a, command: [sh, -c, "sleep 0.2; echo '{}'"]}
          - {name: b, depends_on: [a], command: [sh, -c, "sleep 0.2; echo '{}'"]}
        """

    static let failing = """
        namespace: apiwait
        name: failing
        version: 1.0.0
        steps:
          - name: fail
            command: [sh, -c, "echo 'boom' >&2; exit 3"]
            retry: {max_attempts: 1}
        """

    @Test func stepShowWorkerListAndBulkCancel() async throws {
        let fixture = try await APIFixture()
        defer { Task { await fixture.shutdown() } }
        let token = try await fixture.admin()
        try await fixture.registerOrder()
        let tool = CommandLineTool("orcastra")
        var tasks: [String] = []
        for order in 1...3 {
            let submitted = try await tool.run(["submit", "shop/order", "--context", #"{"order_id": \#(order)}"#, "--database-url", fixture.cluster.url])
            #expect(submitted.status == 0, "\(submitted.output)")
            tasks.append(submitted.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines))
        }

        // step show: a queued step, as text and JSON; an unknown one.
        let detail = try await fixture.object("GET", "/v1/tasks/\(tasks[0])", token: token).2
        let steps = try #require(detail["steps"] as? [[String: Any]])
        let charge = try #require(steps.first?["id"] as? Int)
        Self.expectSame(try await Self.both(fixture, ["step", "show", "\(charge)"], token), status: 0, "step show")
        Self.expectSame(try await Self.both(fixture, ["step", "show", "\(charge)", "--json"], token), status: 0, "step show --json")
        Self.expectSame(try await Self.both(fixture, ["step", "show", "987654321"], token), status: 66, "step show of an unknown step")

        // worker list: nobody serves shop, where steps wait.
        let workers = try await Self.both(fixture, ["worker", "list"], token)
        Self.expectSame(workers, status: 0, "worker list")
        #expect(workers.http.out.contains("No live worker serves namespace shop"), "\(workers.http.out)")
        Self.expectSame(try await Self.both(fixture, ["worker", "list", "--namespace", "shop", "--all", "--json"], token), status: 0, "worker list --json")

        // task cancel with filters: listing, the refusal without --yes, an unknown template.
        Self.expectSame(try await Self.both(fixture, ["task", "cancel", "--template", "shop/order", "--dry-run"], token), status: 0, "bulk cancel --dry-run")
        Self.expectSame(try await Self.both(fixture, ["task", "cancel", "--template", "shop/order", "--json"], token), status: 64, "bulk cancel without --yes")
        Self.expectSame(try await Self.both(fixture, ["task", "cancel", "--template", "shop/ordr", "--dry-run"], token), status: 66, "bulk cancel of an unknown template")

        // Over HTTP with --yes: every task cancelled, with the reason given in its log.
        let cancelled = try await tool.run(["--api-url", fixture.base, "--api-token", token, "task", "cancel", "--template", "shop/order",
                                            "--yes", "--reason", "withdrawn in bulk", "--json"])
        #expect(cancelled.status == 0, "\(cancelled.output)")
        for task in tasks { #expect(cancelled.standardOutput.contains(task), "\(cancelled.output)") }
        let log = try await tool.run(["task", "events", tasks[1], "--database-url", fixture.cluster.url])
        #expect(log.standardOutput.contains("withdrawn in bulk"), "\(log.output)")
        // Nothing is left to cancel, either way.
        Self.expectSame(try await Self.both(fixture, ["task", "cancel", "--template", "shop/order", "--yes"], token), status: 0, "bulk cancel, none left")
    }

    @Test func schedulesBothWays() async throws {
        let fixture = try await APIFixture()
        defer { Task { await fixture.shutdown() } }
        let token = try await fixture.admin()
        try await fixture.registerOrder()
        let tool = CommandLineTool("orcastra")
        // A yearly cron: nothing fires during the test by itself.
        let created = try await tool.run(["schedule", "create", "yearly", "--template", "shop/order", "--cron", "0 0 1 1 *",
                                          "--context", #"{"order_id": 9}"#, "--database-url", fixture.cluster.url])
        #expect(created.status == 0, "\(created.output)")
        Self.expectSame(try await Self.both(fixture, ["schedule", "list"], token), status: 0, "schedule list")
        Self.expectSame(try await Self.both(fixture, ["schedule", "list", "--namespace", "shop", "--json"], token), status: 0, "schedule list --json")
        Self.expectSame(try await Self.both(fixture, ["schedule", "show", "yearly"], token), status: 0, "schedule show of a bare name")
        Self.expectSame(try await Self.both(fixture, ["schedule", "show", "shop/yearly", "--json"], token), status: 0, "schedule show --json")
        Self.expectSame(try await Self.both(fixture, ["schedule", "show", "yearli"], token), status: 66, "schedule show of an unknown name")
        Self.expectSame(try await Self.both(fixture, ["schedule", "pause", "shop/yearly"], token), status: 0, "schedule pause")
        let resumed = try await tool.run(["--api-url", fixture.base, "--api-token", token, "schedule", "resume", "yearly"])
        #expect(resumed.status == 0 && resumed.standardOutput.hasPrefix("Resumed schedule shop/yearly."), "\(resumed.output)")
        let triggered = try await tool.run(["--api-url", fixture.base, "--api-token", token, "schedule", "trigger", "yearly", "--json"])
        #expect(triggered.status == 0 && triggered.standardOutput.contains("task_id") && triggered.standardOutput.contains("yearly"),
                "\(triggered.output)")
        let deleted = try await tool.run(["--api-url", fixture.base, "--api-token", token, "schedule", "delete", "shop/yearly"])
        #expect(deleted.status == 0 && deleted.standardOutput == "Deleted schedule shop/yearly.\n", "\(deleted.output)")
        Self.expectSame(try await Self.both(fixture, ["schedule", "delete", "shop/yearly"], token), status: 66, "deleting it again")
    }

    @Test func scheduleCreateBothWays() async throws {
        let fixture = try await APIFixture()
        defer { Task { await fixture.shutdown() } }
        let token = try await fixture.admin()
        try await fixture.registerOrder()
        let tool = CommandLineTool("orcastra")
        func create(_ name: String, overHTTP: Bool, _ extra: [String] = []) async throws -> (Int32, String, String) {
            let arguments = ["schedule", "create", name, "--template", "shop/order", "--cron", "0 0 1 1 *", "--timezone", "Europe/Berlin",
                             "--context", #"{"order_id": 12345678901234567890}"#, "--overlap", "skip", "--priority", "-2"] + extra
            let outcome = overHTTP
                ? try await tool.run(["--api-url", fixture.base, "--api-token", token] + arguments,
                                     environment: ["ORCASTRA_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"])
                : try await tool.run(arguments + ["--database-url", fixture.cluster.url], environment: ["ORCASTRA_API_URL": ""])
            return (outcome.status, outcome.standardOutput, outcome.standardError)
        }
        // Two new schedules, one each way: the same lines but for the name.
        let sql = try await create("by-sql", overHTTP: false), http = try await create("by-http", overHTTP: true)
        #expect(sql.0 == 0 && http.0 == 0, "\(sql) \(http)")
        #expect(http.1.replacingOccurrences(of: "by-http", with: "by-sql") == sql.1 && http.1.hasPrefix("Created schedule shop/by-http"),
                "\(sql) \(http)")
        // Stored alike: every field but the name, the id and the times of the row.
        Self.expectSame(try await Self.both(fixture, ["schedule", "show", "shop/by-http"], token), status: 0, "schedule show of the HTTP one")
        let shown = try await tool.run(["schedule", "list", "--json", "--database-url", fixture.cluster.url])
        let list = try JSONSerialization.jsonObject(with: Data(shown.standardOutput.utf8)) as? [[String: Any]] ?? []
        let fields = list.map { row in
            row.filter { !["id", "name", "created_at", "updated_at"].contains($0.key) }.map { "\($0.key)=\($0.value)" }.sorted()
        }
        #expect(fields.count == 2 && fields[0] == fields[1] && shown.standardOutput.contains("12345678901234567890"), "\(shown.output)")
        // --json over HTTP, and the refusals: the same exit codes and messages both ways.
        let json = try await create("by-http-json", overHTTP: true, ["--json", "--paused"])
        #expect(json.0 == 0 && json.1.contains(#""name" : "by-http-json""#) && json.1.contains(#""paused" : true"#), "\(json)")
        let existing = (try await create("by-sql", overHTTP: false), try await create("by-sql", overHTTP: true))
        #expect(existing.0.0 == existing.1.0 && existing.0.0 != 0 && existing.0.2 == existing.1.2, "\(existing)")
        Self.expectSame(try await Self.both(fixture, ["schedule", "create", "x", "--template", "shop/ordr", "--cron", "@daily"], token),
                        status: 66, "an unknown template")
        Self.expectSame(try await Self.both(fixture, ["schedule", "create", "x", "--template", "shop/order", "--cron", "61 * * * *"], token),
                        status: 65, "a bad cron expression")
        Self.expectSame(try await Self.both(fixture, ["schedule", "create", "x", "--template", "shop/order", "--cron", "@daily",
                                                      "--context", #"{"order_id": "text"}"#], token),
                        status: 65, "a context failing the input schema")
    }

    @Test func scheduleApplyBothWays() async throws {
        let fixture = try await APIFixture()
        defer { Task { await fixture.shutdown() } }
        let token = try await fixture.admin()
        try await fixture.registerOrder()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("api-apply-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        func write(_ text: String) throws { try text.write(toFile: "\(folder)/shop.yaml", atomically: true, encoding: .utf8) }
        try write("""
            schedules:
              - {name: nightly, template: shop/order, cron: "0 2 * * *", context: {order_id: 1}}
              - {name: weekly, template: shop/order, cron: "@weekly", context: {order_id: 2}, timezone: Europe/Berlin}
            """)
        // A dry run both ways: nothing is written, the same lines.
        Self.expectSame(try await Self.both(fixture, ["schedule", "apply", folder, "--dry-run"], token), status: 0, "apply --dry-run")
        Self.expectSame(try await Self.both(fixture, ["schedule", "apply", folder, "--dry-run", "--json"], token), status: 0, "apply --dry-run --json")
        // Over HTTP for real, then both ways again: unchanged.
        let tool = CommandLineTool("orcastra")
        let api = ["--api-url", fixture.base, "--api-token", token]
        let applied = try await tool.run(api + ["schedule", "apply", folder])
        #expect(applied.status == 0 && applied.standardOutput.contains("shop/nightly: created")
                && applied.standardOutput.hasSuffix("2 created, 0 updated, 0 unchanged, 0 deleted.\n"), "\(applied.output)")
        Self.expectSame(try await Self.both(fixture, ["schedule", "apply", folder], token), status: 0, "apply, unchanged")
        // A change, and --prune of a schedule the file no longer lists.
        try write("""
            schedules:
              - {name: nightly, template: shop/order, cron: "0 3 * * *", context: {order_id: 1}}
            """)
        Self.expectSame(try await Self.both(fixture, ["schedule", "apply", folder, "--prune", "--dry-run"], token), status: 0, "apply --prune --dry-run")
        let pruned = try await tool.run(api + ["schedule", "apply", folder, "--prune"])
        #expect(pruned.status == 0 && pruned.standardOutput.contains("shop/nightly: updated (cron)")
                && pruned.standardOutput.contains("shop/weekly: deleted"), "\(pruned.output)")
        // Refusals: nothing written, the same message and exit code both ways.
        try write("""
            schedules:
              - {name: nightly, template: shop/order, cron: "0 4 * * *", context: {order_id: 1}}
              - {name: broken, template: shop/order, cron: "@daily", context: {order_id: "text"}}
            """)
        Self.expectSame(try await Self.both(fixture, ["schedule", "apply", folder], token), status: 65, "a context failing the schema")
        try write("""
            schedules:
              - {name: other, template: shop/ordr, cron: "@daily"}
            """)
        Self.expectSame(try await Self.both(fixture, ["schedule", "apply", folder], token), status: 66, "an unknown template")
        let shown = try await tool.run(api + ["schedule", "show", "shop/nightly", "--json"])
        #expect(shown.standardOutput.contains("0 3 * * *"), "nothing was written by the refused applies: \(shown.output)")
    }

    @Test func subWorkflowLinksBothWays() async throws {
        let fixture = try await APIFixture()
        defer { Task { await fixture.shutdown() } }
        let token = try await fixture.admin()
        try await fixture.registerOrder()
        let parentTemplate = """
            namespace: shop
            name: parent
            version: 1.0.0
            steps:
              - {name: sub, workflow: shop/order}
            """
        var (status, _, body) = try await fixture.object("POST", "/v1/templates", token: token, body: Data(parentTemplate.utf8),
                                                         contentType: "application/yaml")
        #expect(status == 201, "\(body)")
        (status, _, body) = try await fixture.object("POST", "/v1/tasks", token: token, json: #"{"template": "shop/parent", "context": {"order_id": 5}}"#)
        let parent = try #require(body["id"] as? String, "\(body)")
        // The orchestrator starts the sub-workflow; its task names the parent.
        let connection = try await PostgresConnection.connect(fixture.cluster.url)
        var child: String?
        let deadline = ContinuousClock.now + .seconds(30)
        while child == nil, ContinuousClock.now < deadline {
            child = try await connection.query("SELECT id::text FROM orcastra.tasks WHERE parent_task_id = \(UUID(uuidString: parent)!)")
                .first?.decode(at: 0, as: String.self)
            if child == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        await connection.close()
        let childID = try #require(child, "the sub-workflow never started:\n\(fixture.cluster.logs)")

        (status, _, body) = try await fixture.object("GET", "/v1/tasks/\(childID)", token: token)
        #expect(status == 200 && body["parent_task_id"] as? String == parent && body["parent_step_name"] as? String == "sub", "\(body)")
        (status, _, body) = try await fixture.object("GET", "/v1/tasks/\(parent)", token: token)
        let step = (body["steps"] as? [[String: Any]])?.first ?? [:]
        #expect(step["workflow"] as? String == "shop/order" && step["child_task_id"] as? String == childID, "\(body)")

        // Both tasks are running: their durations differ between the two runs, the rest is the same.
        func withoutDurations(_ text: String) -> String { text.replacing(#/(?m)^Duration .*$/#, with: "Duration") }
        let childShown = try await Self.both(fixture, ["task", "show", childID], token)
        #expect(childShown.sql.status == 0 && childShown.http.status == 0 && childShown.http.err == childShown.sql.err, "\(childShown)")
        #expect(withoutDurations(childShown.http.out) == withoutDurations(childShown.sql.out), "\(childShown)")
        #expect(childShown.http.out.contains("Parent    step sub ("), "\(childShown.http)")
        let shown = try await Self.both(fixture, ["task", "show", parent], token)
        #expect(shown.http.status == 0 && shown.http.out.contains("Sub-workflows") && shown.http.out.contains("task \(childID)"),
                "\(shown.http)")
        #expect(shown.sql.out.contains("task \(childID)"), "\(shown.sql)")
    }

    @Test func cancelAndRetryTakeTheReason() async throws {
        let fixture = try await APIFixture()
        defer { Task { await fixture.shutdown() } }
        let token = try await fixture.admin()
        try await fixture.registerOrder()
        let (status, _, body) = try await fixture.object("POST", "/v1/tasks", token: token, json: #"{"template": "shop/order", "context": {"order_id": 7}}"#)
        #expect(status == 201, "\(body)")
        let id = try #require(body["id"] as? String)
        let (cancelled, _, answer) = try await fixture.object("POST", "/v1/tasks/\(id)/cancel", token: token, json: #"{"reason": "customer called"}"#)
        #expect(cancelled == 200 && answer["state"] as? String == "cancelled", "\(answer)")
        let events = try await fixture.object("GET", "/v1/tasks/\(id)/events", token: token).2
        let reasons = (events["events"] as? [[String: Any]] ?? []).compactMap { $0["reason"] as? String }
        #expect(reasons.contains("customer called"), "\(reasons)")
        // A reason that is not a string is refused, naming the field, before anything changes.
        let (refused, _, problem) = try await fixture.object("POST", "/v1/steps/1/retry", token: token, json: #"{"reason": 5}"#)
        #expect(refused == 422, "\(problem)")
        #expect((problem["errors"] as? [[String: Any]])?.first?["path"] as? String == "reason", "\(problem)")
    }

    @Test func waitFollowsTheEventStream() async throws {
        let fixture = try await APIFixture()
        defer { Task { await fixture.shutdown() } }
        let token = try await fixture.admin()
        let tool = CommandLineTool("orcastra")
        let api = ["--api-url", fixture.base, "--api-token", token]
        for source in [Self.twoSteps, Self.failing] {
            let (status, _, body) = try await fixture.object("POST", "/v1/templates", token: token, body: Data(source.utf8),
                                                             contentType: "application/yaml")
            #expect(status == 201, "\(body)")
        }
        try await fixture.registerOrder()

        // Nothing serves shop: both ways time out alike (exit 4), the task as it stands on stdout.
        let queued = try await tool.run(["submit", "shop/order", "--context", #"{"order_id": 1}"#, "--database-url", fixture.cluster.url])
        let queuedID = queued.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let timedOut = try await Self.both(fixture, ["task", "wait", queuedID, "--timeout", "1s", "--json"], token)
        #expect(timedOut.sql.status == 4 && timedOut.http.status == 4, "\(timedOut)")
        #expect(timedOut.http.out == timedOut.sql.out, "\(timedOut)")

        try fixture.cluster.worker(namespace: "apiwait")
        let done = try await tool.run(api + ["submit", "apiwait/two", "--wait"])
        #expect(done.status == 0, "\(done.output)")
        #expect(done.standardOutput.contains("complete"), "\(done.output)")
        let failed = try await tool.run(api + ["submit", "apiwait/failing", "--wait", "--json"])
        #expect(failed.status == 2, "\(failed.output)")
        let failedID = try #require((try JSONSerialization.jsonObject(with: Data(failed.standardOutput.utf8)) as? [String: Any])?["id"] as? String)
        // A finished task: the same answer both ways.
        Self.expectSame(try await Self.both(fixture, ["task", "wait", failedID], token), status: 2, "waiting for a failed task")
    }
}
