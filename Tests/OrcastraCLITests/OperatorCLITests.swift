import Foundation
import OrcastraDevDB
import OrcastraPostgres
import OrcastraTesting
import Testing

/// Issue 13's fixes, each through the built binaries: exact times, release-only defaults, one form
/// of ids, JSON for scripts also when a wait times out, `--version` everywhere.
@Suite(.timeLimit(.minutes(5))) struct OperatorCLITests {
    let orcastra = CommandLineTool("orcastra")
    let cli = TaskCLITests()

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
    }

    func runAt(_ task: String, _ url: String) async throws -> String? {
        let show = try await orcastra.run(["task", "show", task, "--json", "--database-url", url])
        return try json(show.standardOutput)["run_at"] as? String
    }

    @Test func timesKeepTheirTimeOfDayAndTheirZone() async throws {
        let (url, pool) = try await cli.database()
        defer { Task { await pool.shutdown() } }
        let cases: [(at: String, zone: String, expected: String)] = [
            ("2030-12-01T02:00:00Z", "UTC", "2030-12-01T02:00:00.000Z"),
            ("2030-12-01T02:00:00", "UTC", "2030-12-01T02:00:00.000Z"),
            ("2030-12-01T02:00", "Asia/Tokyo", "2030-11-30T17:00:00.000Z"),
            ("2030-12-01 02:00:30.5", "UTC", "2030-12-01T02:00:30.500Z"),
            ("2030-12-01T04:00+02:00", "America/New_York", "2030-12-01T02:00:00.000Z"),
            ("2030-12-01T02:00:00-0530", "UTC", "2030-12-01T07:30:00.000Z"),
            ("2030-12-01", "Europe/Berlin", "2030-11-30T23:00:00.000Z"),
        ]
        for (at, zone, expected) in cases {
            let submitted = try await orcastra.run(["submit", "shop/single", "--at", at, "--database-url", url], environment: ["TZ": zone])
            #expect(submitted.status == 0, "--at \(at): \(submitted.output)")
            let task = submitted.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try await runAt(task, url) == expected, "--at \(at) in \(zone)")
        }
        for bad in ["2026-12-01Tnonsense", "2026-12-01T25:99:00Z", "2026-02-30", "2026-12-01T02:00:00Zjunk", "2026-13-01", "2026-12-01T02",
                    "tomorrow", "2026-12-01T02:00:00+24:00", "20261201T020000Z"] {
            let refused = try await orcastra.run(["submit", "shop/single", "--at", bad, "--database-url", url])
            #expect(refused.status == 65, "--at \(bad): \(refused.output)")
            #expect(refused.standardError.contains("is not a time. Write it like 2026-05-01T14:00"), "\(refused.output)")
            let listed = try await orcastra.run(["task", "list", "--since", bad, "--database-url", url])
            #expect(listed.status == 65 && listed.standardError.contains("--since '\(bad)' is not a time"), "\(listed.output)")
        }
        #expect(try await pool.query("SELECT count(*) AS n FROM orcastra.tasks").first!.decode("n", as: Int.self) == cases.count)
        // A scheduled task says so.
        let show = try await orcastra.run(["task", "show", (try await pool.query("SELECT id FROM orcastra.tasks LIMIT 1").first!.decode("id", as: UUID.self)).uuidString, "--json", "--database-url", url])
        #expect(try json(show.standardOutput)["state_reason"] as? String == "scheduled")
        // Negative priorities are values, not flags.
        let low = try await orcastra.run(["submit", "shop/single", "--priority", "-5", "--json", "--database-url", url])
        #expect(low.status == 0, "\(low.output)")
    }

    @Test func anUnpinnedReferenceTakesTheHighestRelease() async throws {
        let (url, pool) = try await cli.database()
        defer { Task { await pool.shutdown() } }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("orcastra-versions-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for version in ["1.9.0", "1.10.0", "2.0.0-rc.1"] {
            try "namespace: rel\nname: app\nversion: \(version)\nsteps:\n  - {name: only, handler: rel.only}\n"
                .write(to: folder.appendingPathComponent("app-\(version).yaml"), atomically: true, encoding: .utf8)
        }
        try "namespace: rel\nname: beta\nversion: 0.1.0-beta.2\nsteps:\n  - {name: only, handler: rel.only}\n"
            .write(to: folder.appendingPathComponent("beta.yaml"), atomically: true, encoding: .utf8)
        let register = try await orcastra.run(["template", "register", folder.path, "--database-url", url])
        #expect(register.status == 0, "\(register.output)")

        let unpinned = try await orcastra.run(["submit", "rel/app", "--json", "--database-url", url])
        #expect(try json(unpinned.standardOutput)["template"] as? String == "rel/app@1.10.0", "\(unpinned.output)")
        let pinned = try await orcastra.run(["submit", "rel/app@2.0.0-rc.1", "--json", "--database-url", url])
        #expect(try json(pinned.standardOutput)["template"] as? String == "rel/app@2.0.0-rc.1", "\(pinned.output)")
        let onlyBeta = try await orcastra.run(["submit", "rel/beta", "--database-url", url])
        #expect(onlyBeta.status == 66)
        #expect(onlyBeta.standardError.contains("rel/beta has prerelease versions only (0.1.0-beta.2)") && onlyBeta.standardError.contains("rel/beta@0.1.0-beta.2"),
                "\(onlyBeta.output)")

        // The SQL entry point for other languages picks the same.
        let created: UUID = try await pool.query("SELECT task_id FROM orcastra.create_task_by_name('rel', 'app')").first!.decode("task_id")
        let viaSQL = try await pool.query("""
            SELECT t.version FROM orcastra.tasks k JOIN orcastra.templates t ON t.id = k.template_id WHERE k.id = \(created)
            """)
        #expect(try viaSQL.first?.decode("version", as: String.self) == "1.10.0")
        await #expect(throws: PostgresError.self) {
            try await pool.query("SELECT * FROM orcastra.create_task_by_name('rel', 'beta')")
        }
    }

    @Test func idsHaveOneFormAndOneType() async throws {
        let (url, pool) = try await cli.database()
        defer { Task { await pool.shutdown() } }
        let submitted = try await orcastra.run(["submit", "shop/single", "--json", "--database-url", url])
        let task = try #require(try json(submitted.standardOutput)["task_id"] as? String)
        #expect(task == task.lowercased() && UUID(uuidString: task) != nil)
        let show = try await orcastra.run(["task", "show", task.uppercased(), "--json", "--database-url", url])
        #expect(try json(show.standardOutput)["id"] as? String == task, "\(show.output)")
        let list = try await orcastra.run(["task", "list", "--json", "--database-url", url])
        let row = try #require((try json(list.standardOutput)["tasks"] as? [[String: Any]])?.first)
        #expect(row["id"] as? String == task)
        #expect(row["error"] is NSNull && row["finished_at"] is NSNull, "every key of a task row is there, null when unset: \(row)")
        #expect((row["cursor"] as? String)?.hasSuffix("." + task) == true, "\(row)")

        try await cli.finish(pool, step: "only", task: task, fail: true)
        let step = try await cli.stepID(pool, task, "only")
        let retried = try await orcastra.run(["step", "retry", String(step), "--json", "--database-url", url])
        let answer = try json(retried.standardOutput)
        #expect(answer["step_id"] as? Int == Int(step), "\(retried.output)")
        #expect(!(answer["step_id"] is String))
    }

    @Test func aWaitThatTimesOutStillPrintsTheTaskAsJSON() async throws {
        let (url, pool) = try await cli.database()
        defer { Task { await pool.shutdown() } }
        let submitted = try await orcastra.run(["submit", "shop/single", "--wait", "--timeout", "1s", "--json", "--database-url", url])
        #expect(submitted.status == 4)
        let task = try json(submitted.standardOutput)
        let id = try #require(task["id"] as? String, "\(submitted.output)")
        #expect(task["state"] as? String == "in_progress")
        #expect(submitted.standardError.contains("orcastra task wait \(id)"))

        let waited = try await orcastra.run(["task", "wait", id, "--timeout", "1s", "--json", "--database-url", url])
        #expect(waited.status == 4)
        #expect(try json(waited.standardOutput)["id"] as? String == id, "\(waited.output)")
    }

    @Test func everyExecutableTellsItsVersion() async throws {
        var versions: [String] = []
        for name in ["orcastra", "orcastra-worker", "orcastra-orchestrator"] {
            let run = try await CommandLineTool(name).run(["--version"])
            #expect(run.status == 0, "\(name): \(run.output)")
            versions.append(run.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        #expect(Set(versions).count == 1 && versions[0].split(separator: ".").count == 3, "\(versions)")
    }

    /// Claims the one enqueued step of `namespace` and reports `error` (with a retry when `retry`) or success.
    func attempt(_ pool: PostgresPool, _ namespace: String, error: String?, retry: Bool = true) async throws {
        let claimed = try #require(try await pool.query("SELECT step_id, lease_token FROM orcastra.claim_steps(\(namespace), 'cli-test', 1, 60000)").first)
        let id: Int64 = try claimed.decode("step_id"), token: UUID = try claimed.decode("lease_token")
        let results: [JSONText?] = [error == nil ? JSONText(#"{"ok": true}"#) : nil]
        _ = try await pool.query("""
            SELECT * FROM orcastra.report_steps(\([id]), \([token]), \(results)::jsonb[], \([error])::text[], \([error != nil && retry ? Int64(0) : nil])::bigint[])
            """)
    }

    @Test func aStepKeepsTheErrorOfEveryAttempt() async throws {
        let (url, pool) = try await cli.database()
        defer { Task { await pool.shutdown() } }
        let task = try await orcastra.run(["submit", "shop/single", "--database-url", url]).standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let traceback = "the command exited 1: Traceback (most recent call last):\n  File \"step.py\", line 3, in <module>\n    check(order)\nValueError: bad input\n"
        try await attempt(pool, "shop", error: traceback)
        _ = try await pool.query("SELECT orcastra.enqueue_due_retries(10)")
        try await attempt(pool, "shop", error: nil)
        let step = try await cli.stepID(pool, task, "only")

        let shown = try await orcastra.run(["step", "show", String(step), "--json", "--database-url", url])
        #expect(shown.status == 0, "\(shown.output)")
        let history = try json(shown.standardOutput)
        #expect(history["task_id"] as? String == task)
        let attempts = try #require(history["attempts"] as? [[String: Any]], "\(shown.output)")
        #expect(attempts.count == 2)
        #expect(attempts.first?["error"] as? String == traceback.trimmingCharacters(in: .newlines) || (attempts.first?["error"] as? String)?.contains("ValueError: bad input") == true)
        #expect(attempts.first?["outcome"] as? String == "waiting_for_retry" && attempts.first?["worker"] as? String == "cli-test")
        #expect(attempts.last?["outcome"] as? String == "complete" && attempts.last?["error"] is NSNull, "absent values are null")
        let transitions = try #require(history["transitions"] as? [[String: Any]])
        #expect(transitions.first?["from"] is NSNull && transitions.allSatisfy { Set($0.keys).isSuperset(of: ["from", "metadata", "attempt", "step_id"]) })
        #expect(attempts.first?["duration_seconds"] is Double)

        let text = try await orcastra.run(["step", "show", String(step), "--database-url", url])
        #expect(text.standardOutput.contains("ATTEMPT") && text.standardOutput.contains("the command exited 1: ValueError: bad input"), "\(text.output)")
        #expect(text.standardOutput.contains("Attempt 1 error:") && text.standardOutput.contains("check(order)"), "\(text.output)")
        let withAttempts = try await orcastra.run(["task", "show", task, "--attempts", "--database-url", url])
        #expect(withAttempts.standardOutput.contains("Attempts\n  only (step \(step))"), "\(withAttempts.output)")
        #expect(withAttempts.standardOutput.contains("waiting_for_retry: the command exited 1: ValueError: bad input"), "\(withAttempts.output)")
        #expect(withAttempts.standardOutput.contains("#2  cli-test") && withAttempts.standardOutput.contains("complete"), "\(withAttempts.output)")
        let unknown = try await orcastra.run(["step", "show", "999999", "--database-url", url])
        #expect(unknown.status == 66 && unknown.standardError.contains("No step with id 999999"))

        // task show: the namespace, the result, and the last meaningful line of an error.
        let other = try await orcastra.run(["submit", "shop/single", "--database-url", url]).standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        try await attempt(pool, "shop", error: traceback, retry: false)
        let show = try await orcastra.run(["task", "show", other, "--database-url", url])
        #expect(show.standardOutput.contains("NAMESPACE") && show.standardOutput.contains("the command exited 1: ValueError: bad input"), "\(show.output)")
        #expect(!show.standardOutput.contains("Traceback"), "\(show.output)")
        let done = try await orcastra.run(["task", "show", task, "--database-url", url])
        #expect(done.standardOutput.contains(#"{"ok":true}"#), "\(done.output)")
    }

    @Test func aTaskRetriesAllItsFailedStepsAtOnce() async throws {
        let (url, pool) = try await cli.database()
        defer { Task { await pool.shutdown() } }
        var yaml = "namespace: fan\nname: wide\nversion: 1.0.0\nsteps:\n"
        for index in 0..<12 { yaml += "  - {name: s\(index), handler: fan.s}\n" }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("fan-\(UUID().uuidString).yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(try await orcastra.run(["template", "register", file.path, "--database-url", url]).status == 0)
        let task = try await orcastra.run(["submit", "fan/wide", "--database-url", url]).standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        for _ in 0..<12 { try await attempt(pool, "fan", error: "disk full", retry: false) }

        let waited = try await orcastra.run(["task", "wait", task, "--database-url", url])
        #expect(waited.status == 2)
        #expect(waited.standardOutput.contains("12 steps in error") && waited.standardOutput.contains("retry all: orcastra task retry \(task)"), "\(waited.output)")
        #expect(waited.standardOutput.contains("… and 2 more"), "\(waited.output)")
        #expect(waited.standardOutput.split(separator: "\n").count <= 15, "\(waited.output)")
        // Progress lines name three steps, then how many more.
        #expect(waited.standardError.contains("failed: s0, s1, s2 and 9 more"), "\(waited.standardError)")
        #expect(waited.standardError.split(separator: "\n").filter { $0.contains("steps done") }.allSatisfy { $0.count < 160 }, "\(waited.standardError)")

        let retried = try await orcastra.run(["task", "retry", task, "--json", "--database-url", url])
        #expect(retried.status == 0, "\(retried.output)")
        #expect(try json(retried.standardOutput)["retried_steps"] as? Int == 12)
        #expect(try await pool.query("SELECT count(*) AS n FROM orcastra.steps WHERE task_id = \(task)::uuid AND state = 'enqueued'").first!.decode("n", as: Int.self) == 12)
        #expect(try await pool.query("SELECT state FROM orcastra.tasks WHERE id = \(task)::uuid").first!.decode("state", as: String.self) == "in_progress")
        let again = try await orcastra.run(["task", "retry", task, "--database-url", url])
        #expect(again.status == 75 && again.standardError.contains("no step in error"), "\(again.output)")
        let missing = try await orcastra.run(["task", "retry", UUID().uuidString, "--database-url", url])
        #expect(missing.status == 66, "\(missing.output)")
    }

    @Test func rerunMakesANewTaskOfTheSameVersionAndContext() async throws {
        let (url, pool) = try await cli.database()
        defer { Task { await pool.shutdown() } }
        let first = try await orcastra.run(["submit", "shop/diamond", "--context", #"{"order_id": 7, "amount": 500.0}"#, "--priority", "3",
                                            "--idempotency-key", "order-7", "--database-url", url])
        let original = first.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let rerun = try await orcastra.run(["task", "rerun", original, "--json", "--database-url", url])
        #expect(rerun.status == 0, "\(rerun.output)")
        let answer = try json(rerun.standardOutput)
        let copy = try #require(answer["task_id"] as? String)
        #expect(copy != original && answer["rerun_of"] as? String == original && answer["template"] as? String == "shop/diamond@1.0.0")
        let row = try #require(try await pool.query("SELECT context::text AS c, priority, idempotency_key FROM orcastra.tasks WHERE id = \(copy)::uuid").first)
        #expect(try row.decode("c", as: String.self) == #"{"amount": 500.0, "order_id": 7}"#)
        #expect(try row.decode("priority", as: Int.self) == 3 && (try row.decode("idempotency_key", as: String?.self)) == nil)
        let plain = try await orcastra.run(["task", "rerun", original, "--database-url", url])
        #expect(UUID(uuidString: plain.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)) != nil, "\(plain.output)")
        #expect(try await orcastra.run(["task", "rerun", UUID().uuidString, "--database-url", url]).status == 66)
    }

    @Test func resolveDeclaresATaskDoneAndTheInvariantsHold() async throws {
        let (url, pool) = try await cli.database()
        defer { Task { await pool.shutdown() } }
        let task = try await orcastra.run(["submit", "shop/diamond", "--context", #"{"order_id": 1}"#, "--database-url", url])
            .standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        // start completes; left fails for good; right is running.
        try await cli.finish(pool, step: "start", task: task)
        let claimed = try await pool.query("SELECT step_id, lease_token FROM orcastra.claim_steps('shop', 'cli-test', 10, 60000)")
        let left = try await cli.stepID(pool, task, "left")
        for row in claimed where try row.decode("step_id", as: Int64.self) == left {
            _ = try await pool.query("SELECT * FROM orcastra.fail_steps(ARRAY[\(left)]::bigint[], ARRAY[\(try row.decode("lease_token", as: UUID.self))]::uuid[], ARRAY['boom']::text[], ARRAY[NULL]::bigint[])")
        }
        let running = try await orcastra.run(["task", "resolve", task, "--database-url", url])
        #expect(running.status == 75 && running.standardError.contains("has running steps: right"), "\(running.output)")

        let right = try await cli.stepID(pool, task, "right")
        for row in claimed where try row.decode("step_id", as: Int64.self) == right {
            _ = try await pool.query("SELECT * FROM orcastra.release_steps(ARRAY[\(right)]::bigint[], ARRAY[\(try row.decode("lease_token", as: UUID.self))]::uuid[])")
        }
        let resolved = try await orcastra.run(["task", "resolve", task, "--reason", "done by hand", "--json", "--database-url", url])
        #expect(resolved.status == 0, "\(resolved.output)")
        #expect(try json(resolved.standardOutput)["state"] as? String == "resolved_manually")
        let states = try await pool.query("SELECT name, state FROM orcastra.steps WHERE task_id = \(task)::uuid ORDER BY id").map {
            "\(try $0.decode("name", as: String.self))=\(try $0.decode("state", as: String.self))"
        }
        #expect(states == ["start=complete", "left=resolved_manually", "right=cancelled", "join=resolved_manually"])
        // The failed step keeps the end of its attempt (its duration is that attempt's).
        let ends = try #require(try await pool.query("""
            SELECT s.finished_at < (SELECT t.created_at FROM orcastra.task_transitions t WHERE t.task_id = s.task_id AND t.to_state = 'resolved_manually') AS kept
            FROM orcastra.steps s WHERE s.id = \(left)
            """).first)
        #expect(try ends.decode("kept", as: Bool.self))
        let check = try await orcastra.run(["check", "--database-url", url])
        #expect(check.status == 0, "\(check.output)")
        let again = try await orcastra.run(["task", "resolve", task, "--database-url", url])
        #expect(again.status == 0, "resolving a resolved task changes nothing: \(again.output)")
        let complete = try await orcastra.run(["submit", "shop/single", "--database-url", url]).standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        try await cli.finish(pool, step: "only", task: complete)
        let finished = try await orcastra.run(["task", "resolve", complete, "--database-url", url])
        #expect(finished.status == 75 && finished.standardError.contains("is already complete"), "\(finished.output)")
        let scheduled = try await orcastra.run(["submit", "shop/single", "--in", "1h", "--database-url", url]).standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let early = try await orcastra.run(["task", "resolve", scheduled, "--database-url", url])
        #expect(early.status == 75 && early.standardError.contains("cancel it instead"), "\(early.output)")
    }

    @Test func cancelByFilterCountsFirstAndNeedsYes() async throws {
        let (url, pool) = try await cli.database()
        defer { Task { await pool.shutdown() } }
        for _ in 0..<3 { _ = try await orcastra.run(["submit", "shop/single", "--database-url", url]) }
        let keep = try await orcastra.run(["submit", "shop/diamond", "--context", #"{"order_id": 1}"#, "--database-url", url])
            .standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)

        let dry = try await orcastra.run(["task", "cancel", "--template", "shop/single", "--dry-run", "--database-url", url])
        #expect(dry.status == 0 && dry.standardOutput.hasPrefix("3 unfinished tasks match; nothing was changed (--dry-run)."), "\(dry.output)")
        let unconfirmed = try await orcastra.run(["task", "cancel", "--template", "shop/single", "--database-url", url])
        #expect(unconfirmed.status == 64 && unconfirmed.standardError.contains("Add --yes"), "\(unconfirmed.output)")
        #expect(try await pool.query("SELECT count(*) AS n FROM orcastra.tasks WHERE state = 'cancelled'").first!.decode("n", as: Int.self) == 0)
        let older = try await orcastra.run(["task", "cancel", "--template", "shop/single", "--older-than", "1h", "--yes", "--database-url", url])
        #expect(older.status == 0 && older.standardOutput.contains("Cancelled 0 tasks"), "\(older.output)")

        let done = try await orcastra.run(["task", "cancel", "--template", "shop/single", "--state", "in_progress", "--yes", "--json", "--database-url", url])
        #expect(done.status == 0, "\(done.output)")
        let answer = try json(done.standardOutput)
        #expect(answer["matched"] as? Int == 3 && (answer["cancelled"] as? [String])?.count == 3 && answer["dry_run"] as? Bool == false)
        #expect(try await pool.query("SELECT state FROM orcastra.tasks WHERE id = \(keep)::uuid").first!.decode("state", as: String.self) == "in_progress")

        let finished = try await orcastra.run(["task", "cancel", "--state", "complete", "--yes", "--database-url", url])
        #expect(finished.status == 65 && finished.standardError.contains("cannot be cancelled"), "\(finished.output)")
        let typo = try await orcastra.run(["task", "cancel", "--template", "shop/singel", "--dry-run", "--database-url", url])
        #expect(typo.status == 66 && typo.standardError.contains("Did you mean shop/single?"), "\(typo.output)")
        let malformed = try await orcastra.run(["task", "list", "--database-url", "not a url"])
        #expect(malformed.status == 64 && malformed.standardError.contains("--database-url is not a PostgreSQL connection string"), "\(malformed.output)")
        let both = try await orcastra.run(["task", "cancel", keep, "--template", "shop/single", "--database-url", url])
        #expect(both.status == 64, "\(both.output)")
    }

    @Test func durationsSayWhichUnitsWork() async throws {
        let day = try await orcastra.run(["submit", "shop/single", "--in", "1d"])
        #expect(day.status == 64 && day.standardError.contains("there is no d: a day is 24h"), "\(day.output)")
        let bare = try await orcastra.run(["task", "wait", UUID().uuidString, "--timeout", "30"])
        #expect(bare.status == 64 && bare.standardError.contains("has no unit; add one, e.g. 30s"), "\(bare.output)")
    }

    @Test func ctrlCWhileWaitingSaysTheTaskKeepsRunning() async throws {
        let (url, pool) = try await cli.database()
        defer { Task { await pool.shutdown() } }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("wait-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let waiting = try BackgroundProcess(CommandLineTool("orcastra").path, ["submit", "shop/single", "--wait", "--database-url", url],
                                            environment: [:], logPath: log)
        #expect(await waitUntil(within: .seconds(20)) { !waiting.log.isEmpty })  // its first progress line
        try await Task.sleep(for: .milliseconds(300))
        waiting.send(SIGINT)
        #expect(await waiting.wait(timeout: .seconds(10)) == 130, "\(waiting.log)")
        let id = try #require(try await pool.query("SELECT id FROM orcastra.tasks").first?.decode("id", as: UUID.self)).uuidString.lowercased()
        #expect(waiting.log.contains("Stopped watching; task \(id) keeps running. Watch it again with `orcastra task wait \(id)`"), "\(waiting.log)")
        #expect(try await pool.query("SELECT state FROM orcastra.tasks").first!.decode("state", as: String.self) == "in_progress")
    }

    @Test func theWorkersHelpNamesEveryBuiltInHandler() async throws {
        let help = try await CommandLineTool("orcastra-worker").run(["--help"])
        let text = help.standardOutput.replacingOccurrences(of: "\n", with: " ")
        for name in ["orcastra.noop", "orcastra.echo", "orcastra.sleep"] {
            #expect(text.contains(name), "\(name) missing from orcastra-worker --help")
        }
        #expect(text.contains("(default: info, or ORCASTRA_LOG_LEVEL)"))
    }

    @Test func templateShowQuotesCommandsAsAShellReadsThem() async throws {
        let (url, pool) = try await cli.database()
        defer { Task { await pool.shutdown() } }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("quoted-\(UUID().uuidString).yaml")
        try """
            namespace: quote
            name: shell
            version: 1.0.0
            steps:
              - {name: py, command: [python3, -c, "print('x')"]}
            """.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(try await orcastra.run(["template", "register", file.path, "--database-url", url]).status == 0)
        let show = try await orcastra.run(["template", "show", "quote/shell", "--database-url", url])
        #expect(show.standardOutput.contains(#"command: python3 -c 'print('\''x'\'')'"#), "\(show.output)")
        let source = try await orcastra.run(["template", "show", "quote/shell", "--source", "--database-url", url])
        #expect(source.standardOutput.hasSuffix("\n") && source.standardOutput.contains("print('x')"))
        let shownJSON = try await orcastra.run(["template", "show", "quote/shell", "--json", "--database-url", url])
        #expect(shownJSON.standardOutput.split(separator: "\n").count > 5, "pretty-printed like every other command's JSON: \(shownJSON.output)")
        #expect(try json(shownJSON.standardOutput)["registry"] is [String: Any])
        let both = try await orcastra.run(["template", "show", "quote/shell", "--source", "--json", "--database-url", url])
        #expect(both.status == 64 && both.standardError.contains("not both"), "\(both.output)")
    }

    /// An operator's retry grants the template's attempts again — not double the last budget.
    @Test func aRetryGrantsTheTemplatesAttemptsAgain() async throws {
        let (url, pool) = try await cli.database()
        defer { Task { await pool.shutdown() } }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("budget-\(UUID().uuidString).yaml")
        try "namespace: budget\nname: flaky\nversion: 1.0.0\nsteps:\n  - {name: s, handler: budget.s, retry: {max_attempts: 2}}\n"
            .write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(try await orcastra.run(["template", "register", file.path, "--database-url", url]).status == 0)
        let task = try await orcastra.run(["submit", "budget/flaky", "--database-url", url]).standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let step = try await cli.stepID(pool, task, "s")
        func failUntilError() async throws {
            while try await pool.query("SELECT state FROM orcastra.steps WHERE id = \(step)").first!.decode("state", as: String.self) != "error" {
                _ = try await pool.query("SELECT orcastra.enqueue_due_retries(10)")
                try await attempt(pool, "budget", error: "boom")
            }
        }
        func budget() async throws -> [Int] {
            let row = try await pool.query("SELECT attempts, max_attempts FROM orcastra.steps WHERE id = \(step)").first!
            return [try row.decode("attempts", as: Int.self), try row.decode("max_attempts", as: Int.self)]
        }
        try await failUntilError()
        #expect(try await budget() == [2, 2])
        #expect(try await orcastra.run(["step", "retry", String(step), "--database-url", url]).status == 0)
        #expect(try await budget() == [2, 4])
        try await failUntilError()
        #expect(try await budget() == [4, 4])
        #expect(try await orcastra.run(["task", "retry", task, "--database-url", url]).status == 0)
        #expect(try await budget() == [4, 6], "a second retry grants 2 more attempts, not 4")
        try await failUntilError()
        #expect(try await budget() == [6, 6])
    }

    @Test func submitRefusesAnEmptyKeyAndAPriorityOutOfRange() async throws {
        for arguments in [["--idempotency-key", ""], ["--idempotency-key", "   "], ["--priority", "99999999999"], ["--in", "-5m"]] {
            let run = try await orcastra.run(["submit", "shop/single"] + arguments)
            #expect(run.status == 64, "\(arguments): \(run.output)")
            #expect(!run.standardError.contains("PostgreSQL") && !run.standardError.contains("Missing value"), "\(arguments): \(run.output)")
        }
    }

    @Test func tablesKeepEveryCharacterOfAnEmojiOrCJKCell() async throws {
        let (url, pool) = try await cli.database()
        defer { Task { await pool.shutdown() } }
        let task = try await orcastra.run(["submit", "shop/single", "--database-url", url]).standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let claimed = try #require(try await pool.query("SELECT step_id, lease_token FROM orcastra.claim_steps('shop', 'cli-test', 1, 60000)").first)
        let id: Int64 = try claimed.decode("step_id"), token: UUID = try claimed.decode("lease_token")
        _ = try await pool.query("SELECT * FROM orcastra.complete_steps(\([id]), \([token]), ARRAY['{\"a\": \"👋 日本\"}']::jsonb[])")
        let show = try await orcastra.run(["task", "show", task, "--database-url", url])
        #expect(show.standardOutput.contains(#"{"a":"👋 日本"}"#), "\(show.output)")
    }

    @Test func aWaitOnANamespaceNoWorkerServesSaysSo() async throws {
        let (url, pool) = try await cli.database()
        defer { Task { await pool.shutdown() } }
        let waited = try await orcastra.run(["submit", "shop/single", "--wait", "--timeout", "8s", "--database-url", url])
        #expect(waited.status == 4)
        #expect(waited.standardError.contains("note: no live worker serves namespace shop, where only waits: start one with `orcastra-worker --namespace shop`."),
                "\(waited.output)")
    }

    @Test func nameSuggestionsDropAccentsNotLetters() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("cafe-\(UUID().uuidString).yaml")
        try "namespace: ops\nname: café\nversion: 1.0.0\nsteps:\n  - {name: schritt_ü, handler: x.y}\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let checked = try await orcastra.run(["template", "validate", file.path])
        #expect(checked.status == 65)
        #expect(checked.standardError.contains("try 'cafe'") && checked.standardError.contains("try 'schritt_u'"), "\(checked.output)")
    }
}
