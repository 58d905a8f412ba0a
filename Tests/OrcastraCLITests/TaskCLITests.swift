import Foundation
import OrcastraPostgres
import OrcastraTesting
import Testing

/// `submit`, `task …` and `step …` through the built binary: output, messages and exit codes.
/// No worker runs: the tests move steps with the worker protocol's SQL functions.
@Suite(.timeLimit(.minutes(5))) struct TaskCLITests {
    let orcastra = CommandLineTool("orcastra")

    static let templates = [
        "diamond.yaml": """
            namespace: shop
            name: diamond
            version: 1.0.0
            input_schema:
              type: object
              required: [order_id]
              properties:
                order_id: {type: integer}
            steps:
              - {name: start, handler: shop.start}
              - {name: left, handler: shop.left, depends_on: [start]}
              - {name: right, handler: shop.right, depends_on: [start]}
              - {name: join, handler: shop.join, depends_on: [left, right]}
            """,
        "single.yaml": """
            namespace: shop
            name: single
            version: 1.0.0
            steps:
              - {name: only, handler: shop.only}
            """,
    ]

    /// A migrated database with the two templates registered, and a pool on it for driving states.
    func database() async throws -> (url: String, pool: PostgresPool) {
        let url = try await TestDatabases.shared.makeDatabase()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("orcastra-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for (name, yaml) in Self.templates {
            try yaml.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let register = try await orcastra.run(["template", "register", folder.path, "--database-url", url])
        #expect(register.status == 0, "\(register.output)")
        return (url, PostgresPool(conninfo: url, maximumConnections: 2))
    }

    /// What a run printed and returned (the runner's own type lives in a module this target does not import).
    struct Run: Sendable {
        var status: Int32
        var standardOutput: String
        var standardError: String
        var output: String { standardOutput + standardError }
    }

    func submit(_ arguments: [String], _ url: String, input: String? = nil) async throws -> Run {
        let outcome = try await orcastra.run(["submit"] + arguments + ["--database-url", url], input: input)
        return Run(status: outcome.status, standardOutput: outcome.standardOutput, standardError: outcome.standardError)
    }

    func stepID(_ pool: PostgresPool, _ task: String, _ name: String) async throws -> Int64 {
        try await pool.query("SELECT id FROM orcastra.steps WHERE task_id = \(task)::uuid AND name = \(name)").first!.decode("id")
    }

    /// Claims every enqueued step of `namespace`, completing `name` and failing or handing back the others.
    func finish(_ pool: PostgresPool, namespace: String = "shop", step name: String, task: String, fail: Bool = false) async throws {
        let wanted = try await stepID(pool, task, name)
        let claimed = try await pool.query("SELECT step_id, lease_token FROM orcastra.claim_steps(\(namespace), 'cli-test', 100, 60000)")
        for row in claimed {
            let id: Int64 = try row.decode("step_id")
            let token: UUID = try row.decode("lease_token")
            if id == wanted && fail {
                try await pool.query("SELECT * FROM orcastra.fail_steps(ARRAY[\(id)]::bigint[], ARRAY[\(token)]::uuid[], ARRAY['disk full']::text[], ARRAY[NULL]::int[])")
            } else if id == wanted {
                try await pool.query("SELECT * FROM orcastra.complete_steps(ARRAY[\(id)]::bigint[], ARRAY[\(token)]::uuid[], ARRAY['{\"ok\": true}']::jsonb[])")
            } else {
                try await pool.query("SELECT * FROM orcastra.release_steps(ARRAY[\(id)]::bigint[], ARRAY[\(token)]::uuid[])")
            }
        }
    }

    /// The id of the task with this idempotency key, once the CLI under test has created it.
    func taskWithKey(_ pool: PostgresPool, _ key: String) async throws -> String {
        for _ in 0..<200 {
            if let row = try await pool.query("SELECT id::text AS id FROM orcastra.tasks WHERE idempotency_key = \(key)").first {
                return try row.decode("id")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CancellationError()
    }

    @Test func submitShowListAndEvents() async throws {
        let (url, pool) = try await database()
        let submitted = try await submit(["shop/diamond", "--context", #"{"order_id": 42}"#, "--priority", "3"], url)
        #expect(submitted.status == 0, "\(submitted.output)")
        let id = submitted.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(UUID(uuidString: id) != nil)

        let show = try await orcastra.run(["task", "show", id, "--database-url", url])
        #expect(show.status == 0, "\(show.output)")
        #expect(show.standardOutput.contains("Template  shop/diamond@1.0.0"))
        #expect(show.standardOutput.contains("State     in_progress"))
        #expect(show.standardOutput.contains("Priority  3"))
        let lines = show.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("ID") && $0.contains("STEP") && $0.contains("LAST ERROR") })
        #expect(lines.contains { $0.contains("join") && $0.contains("pending") && $0.contains("left, right") })

        let json = try await orcastra.run(["task", "show", id, "--json", "--database-url", url])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        #expect(object["state"] as? String == "in_progress")
        #expect((object["context"] as? [String: Any])?["order_id"] as? Int == 42)
        #expect((object["steps"] as? [[String: Any]])?.map { $0["name"] as? String } == ["start", "left", "right", "join"])

        // --context - reads standard input; --context-file a file.
        let piped = try await submit(["shop/diamond", "--context", "-", "--json"], url, input: #"{"order_id": 7}"#)
        #expect(piped.status == 0, "\(piped.output)")
        let pipedObject = try JSONSerialization.jsonObject(with: Data(piped.standardOutput.utf8)) as? [String: Any]
        #expect(pipedObject?["created"] as? Bool == true)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("ctx-\(UUID().uuidString).json")
        try #"{"order_id": 8}"#.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let fromFile = try await submit(["shop/diamond", "--context-file", file.path], url)
        #expect(fromFile.status == 0, "\(fromFile.output)")
        let scheduled = try await submit(["shop/single", "--in", "1h"], url)
        #expect(scheduled.status == 0, "\(scheduled.output)")

        let list = try await orcastra.run(["task", "list", "--template", "shop/diamond", "--limit", "2", "--json", "--database-url", url])
        let page = try #require(try JSONSerialization.jsonObject(with: Data(list.standardOutput.utf8)) as? [String: Any])
        #expect((page["tasks"] as? [[String: Any]])?.count == 2)
        let cursor = try #require(page["next_cursor"] as? String)
        let next = try await orcastra.run(["task", "list", "--template", "shop/diamond", "--after", cursor, "--database-url", url])
        #expect(next.standardOutput.contains(id), "\(next.output)")
        let pending = try await orcastra.run(["task", "list", "--state", "pending", "--database-url", url])
        #expect(pending.standardOutput.contains("shop/single@1.0.0") && !pending.standardOutput.contains("shop/diamond"))
        let badState = try await orcastra.run(["task", "list", "--state", "running", "--database-url", url])
        #expect(badState.status == 65 && badState.standardError.contains("in_progress"))

        try await finish(pool, step: "start", task: id)
        let events = try await orcastra.run(["task", "events", id, "--database-url", url])
        #expect(events.status == 0)
        let eventLines = events.standardOutput.split(separator: "\n").map(String.init)
        #expect(eventLines[1].contains("task") && eventLines[1].contains("∅ → in_progress"))
        let startRun = try #require(eventLines.firstIndex { $0.contains("step start") && $0.contains("enqueued → in_progress") })
        let startDone = try #require(eventLines.firstIndex { $0.contains("step start") && $0.contains("in_progress → complete") })
        let leftReady = try #require(eventLines.firstIndex { $0.contains("step left") && $0.contains("pending → enqueued") })
        #expect(startRun < startDone && startDone < leftReady)
        await pool.shutdown()
    }

    @Test func submitWaitExitsZeroWhenTheTaskCompletes() async throws {
        let (url, pool) = try await database()
        async let waited = submit(["shop/single", "--idempotency-key", "k1", "--wait"], url)
        let id = try await taskWithKey(pool, "k1")
        try await Task.sleep(for: .milliseconds(300))
        try await finish(pool, step: "only", task: id)
        let result = try await waited
        #expect(result.status == 0, "\(result.output)")
        #expect(result.standardOutput.hasPrefix(id + "\n"))
        #expect(result.standardOutput.contains("Task \(id) complete: 1/1 steps"))
        // Not a terminal: plain progress lines on standard error, one per change.
        #expect(result.standardError.contains("in_progress: 0/1 steps done; queued: only"), "\(result.standardError)")
        #expect(!result.standardError.contains("\r"))
        await pool.shutdown()
    }

    @Test func submitWaitExitsTwoWhenTheTaskFailsAndThreeWhenCancelled() async throws {
        let (url, pool) = try await database()
        async let failed = submit(["shop/single", "--idempotency-key", "fails", "--wait"], url)
        let failing = try await taskWithKey(pool, "fails")
        try await finish(pool, step: "only", task: failing, fail: true)
        let failure = try await failed
        #expect(failure.status == 2, "\(failure.output)")
        let step = try await stepID(pool, failing, "only")
        #expect(failure.standardOutput.contains("only (step \(step), attempt 1 of "))
        #expect(failure.standardOutput.contains("disk full"))
        #expect(failure.standardOutput.contains("orcastra step retry \(step)"))

        async let cancelled = submit(["shop/single", "--idempotency-key", "cancels", "--wait", "--json"], url)
        let cancelling = try await taskWithKey(pool, "cancels")
        let cancel = try await orcastra.run(["task", "cancel", cancelling, "--reason", "not needed", "--database-url", url])
        #expect(cancel.status == 0 && cancel.standardOutput == "Task \(cancelling) cancelled.\n", "\(cancel.output)")
        let outcome = try await cancelled
        #expect(outcome.status == 3, "\(outcome.output)")
        let object = try JSONSerialization.jsonObject(with: Data(outcome.standardOutput.utf8)) as? [String: Any]
        #expect(object?["state"] as? String == "cancelled" && object?["state_reason"] as? String == "not needed")

        let timedOut = try await submit(["shop/single", "--wait", "--timeout", "300ms"], url)
        #expect(timedOut.status == 4, "\(timedOut.output)")
        #expect(timedOut.standardError.contains("is still in_progress after"))
        await pool.shutdown()
    }

    @Test func retryAndResolveRepairAFailedTask() async throws {
        let (url, pool) = try await database()
        let id = try await submit(["shop/diamond", "--context", #"{"order_id": 1}"#], url).standardOutput
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try await finish(pool, step: "start", task: id, fail: true)
        let start = try await stepID(pool, id, "start")
        let show = try await orcastra.run(["task", "show", id, "--database-url", url])
        #expect(show.standardOutput.contains("State     error"))
        #expect(show.standardOutput.contains("Error     start: disk full"))
        let wait = try await orcastra.run(["task", "wait", id, "--database-url", url])
        #expect(wait.status == 2, "\(wait.output)")
        #expect(wait.standardOutput.contains("start (step \(start), attempt 1 of"))

        let retry = try await orcastra.run(["step", "retry", String(start), "--database-url", url])
        #expect(retry.status == 0 && retry.standardOutput.contains("Step \(start) is enqueued again"), "\(retry.output)")
        let again = try await orcastra.run(["step", "retry", String(start), "--database-url", url])
        #expect(again.status == 75)
        #expect(again.standardError.hasPrefix("error: Cannot retry step \(start): step \(start) is enqueued, not error"), "\(again.output)")

        try await finish(pool, step: "start", task: id, fail: true)
        let resolve = try await orcastra.run(["step", "resolve", String(start), "--result", #"{"charged": true}"#, "--json", "--database-url", url])
        #expect(resolve.status == 0, "\(resolve.output)")
        let json = try await orcastra.run(["task", "show", id, "--json", "--database-url", url])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        let steps = try #require(object["steps"] as? [[String: Any]])
        #expect(steps.map { $0["state"] as? String } == ["resolved_manually", "enqueued", "enqueued", "pending"])
        #expect((steps[0]["result"] as? [String: Any])?["charged"] as? Bool == true)

        let badResult = try await orcastra.run(["step", "resolve", String(start), "--result", "{oops}", "--database-url", url])
        #expect(badResult.status == 65 && badResult.standardError.contains("line 1, column 2"), "\(badResult.output)")
        let unknownStep = try await orcastra.run(["step", "retry", "999999", "--database-url", url])
        #expect(unknownStep.status == 66 && unknownStep.standardError.contains("No step with id 999999"))
        let badStep = try await orcastra.run(["step", "retry", "abc", "--database-url", url])
        #expect(badStep.status == 65 && badStep.standardError.contains("not a step id"))
        let finished = try await orcastra.run(["task", "cancel", id, "--database-url", url])
        #expect(finished.status == 0)
        let twice = try await orcastra.run(["task", "cancel", id, "--database-url", url])
        #expect(twice.status == 0)
        await pool.shutdown()
    }

    @Test func errorsAreOneSentenceWithTheWayOut() async throws {
        let (url, pool) = try await database()
        await pool.shutdown()

        let unknownTemplate = try await submit(["shop/diamnd"], url)
        #expect(unknownTemplate.status == 66)
        #expect(unknownTemplate.standardError == "error: No template shop/diamnd is registered. Did you mean shop/diamond?\n")

        let badJSON = try await submit(["shop/diamond", "--context", "{\"order_id\": 4x}"], url)
        #expect(badJSON.status == 65)
        #expect(badJSON.standardError.hasPrefix("error: The context given with --context is not valid JSON at line 1, column 15"), "\(badJSON.output)")
        let truncated = try await submit(["shop/diamond", "--context", "{\"order_id\": 4"], url)
        #expect(truncated.status == 65 && truncated.standardError.contains("ends too early"), "\(truncated.output)")

        let schema = try await submit(["shop/diamond", "--context", #"{"order_id": "four"}"#], url)
        #expect(schema.status == 65)
        #expect(schema.standardError.hasSuffix("input schema of shop/diamond@1.0.0: context.order_id must be an integer, got string. `orcastra template show shop/diamond@1.0.0 --source` shows the schema.\n"), "\(schema.output)")
        let missing = try await submit(["shop/diamond"], url)
        #expect(missing.status == 65 && missing.standardError.contains("context.order_id is required"), "\(missing.output)")

        let badReference = try await submit(["diamond"], url)
        #expect(badReference.status == 65 && badReference.standardError.contains("NAMESPACE/NAME"))
        let badTime = try await submit(["shop/single", "--at", "tomorrow"], url)
        #expect(badTime.status == 65 && badTime.standardError.contains("--at 'tomorrow' is not a time"))
        let both = try await submit(["shop/single", "--at", "2030-01-01T00:00:00Z", "--in", "5m"], url)
        #expect(both.status == 64)

        let malformed = try await orcastra.run(["task", "show", "not-a-uuid", "--database-url", url])
        #expect(malformed.status == 65)
        #expect(malformed.standardError.contains("'not-a-uuid' is not a task id"))
        let unknownTask = try await orcastra.run(["task", "events", "0b6f1c1e-6a2f-4c1e-9d1a-2f3b4c5d6e7f", "--database-url", url])
        #expect(unknownTask.status == 66)
        #expect(unknownTask.standardError == "error: No task with id 0b6f1c1e-6a2f-4c1e-9d1a-2f3b4c5d6e7f. `orcastra task list` shows recent tasks and their ids.\n")

        let unreachable = try await orcastra.run(["task", "list", "--database-url", "postgresql://ops@127.0.0.1:1/prod?connect_timeout=2"])
        #expect(unreachable.status == 69)
        #expect(unreachable.standardError.hasPrefix("error: Could not connect to PostgreSQL at ops@127.0.0.1:1/prod"))

        let empty = try await TestDatabases.shared.makeEmptyDatabase()
        let unmigrated = try await orcastra.run(["task", "list", "--database-url", empty])
        #expect(unmigrated.status == 69)
        #expect(unmigrated.standardError.contains("Run `orcastra migrate` first."), "\(unmigrated.output)")
    }
}
