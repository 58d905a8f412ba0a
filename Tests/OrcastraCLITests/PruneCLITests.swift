import Foundation
import OrcastraDevDB
import OrcastraPostgres
import OrcastraTesting
import Testing

/// `orcastra prune` through the built binary: dry-run counts, archives readable with `gzip -dc`,
/// deletion of exactly what matches, and located errors for bad flags.
@Suite(.timeLimit(.minutes(5))) struct PruneCLITests {
    let orcastra = CommandLineTool("orcastra")

    static let template = """
        namespace: shop
        name: orders
        version: 1.0.0
        steps:
          - {name: first, handler: shop.first}
          - {name: second, handler: shop.second, depends_on: [first]}
        """

    /// A migrated database with shop/orders registered and a pool on it.
    func database() async throws -> (url: String, pool: PostgresPool) {
        let url = try await TestDatabases.shared.makeDatabase()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("orcastra-prune-\(UUID().uuidString).yaml")
        try Self.template.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let register = try await orcastra.run(["template", "register", file.path, "--database-url", url])
        #expect(register.status == 0, "\(register.standardError)")
        return (url, PostgresPool(conninfo: url, maximumConnections: 2))
    }

    /// `count` finished tasks of shop/orders in `state`, finished `days` ago, each with two steps,
    /// their results, edge and transitions (keyed to the tasks' creation week, as the triggers do).
    func load(_ pool: PostgresPool, count: Int, state: String, days: Int, stepState: String = "complete") async throws {
        _ = try await pool.query("""
            WITH t AS (
                INSERT INTO orcastra.tasks (template_id, state, state_reason, context, created_at, started_at, finished_at)
                SELECT (SELECT id FROM orcastra.templates WHERE name = 'orders'), \(state), 'loaded', jsonb_build_object('n', g),
                       now() - \(days) * interval '1 day', now() - \(days) * interval '1 day', now() - \(days) * interval '1 day'
                FROM generate_series(1, \(count)) g
                RETURNING id, finished_at, created_at
            ), s AS (
                INSERT INTO orcastra.steps (task_id, name, namespace, state, state_reason, max_attempts, attempts, pending_parents, finished_at)
                SELECT t.id, n.name, 'shop', CASE n.name WHEN 'second' THEN \(stepState) ELSE 'complete' END, 'loaded', 1, 1, 0, t.finished_at
                FROM t CROSS JOIN (VALUES ('first'), ('second')) AS n(name)
                RETURNING id, task_id, name
            ), r AS (
                INSERT INTO orcastra.step_results (step_id, result) SELECT s.id, jsonb_build_object('step', s.name) FROM s
            ), st AS (
                INSERT INTO orcastra.step_transitions (step_id, task_id, from_state, to_state, attempt, reason, task_created_at)
                SELECT s.id, s.task_id, 'in_progress', 'complete', 1, 'loaded', t.created_at FROM s JOIN t ON t.id = s.task_id
            ), tt AS (
                INSERT INTO orcastra.task_transitions (task_id, from_state, to_state, reason, task_created_at)
                SELECT t.id, 'in_progress', \(state), 'loaded', t.created_at FROM t
            )
            INSERT INTO orcastra.step_edges (parent_id, child_id)
            SELECT a.id, b.id FROM s a JOIN s b ON b.task_id = a.task_id AND b.name = 'second' WHERE a.name = 'first'
            """)
    }

    func count(_ pool: PostgresPool, _ sql: SQL) async throws -> Int {
        try await pool.query(sql).rows[0].decode("count", as: Int.self)
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text)")
    }

    @Test func dryRunCountsByStateAndDeletesNothing() async throws {
        let (url, pool) = try await database()
        try await load(pool, count: 30, state: "complete", days: 40)
        try await load(pool, count: 5, state: "error", days: 40)
        try await load(pool, count: 7, state: "complete", days: 10)
        let run = try await orcastra.run(["prune", "--older-than", "30d", "--dry-run", "--json", "--database-url", url])
        #expect(run.status == 0, "\(run.standardError)")
        let output = try json(run.standardOutput)
        #expect(output["tasks"] as? Int == 35)
        #expect(output["by_state"] as? [String: Int] == ["complete": 30, "error": 5])
        let text = try await orcastra.run(["prune", "--older-than", "30d", "--state", "error", "--dry-run", "--database-url", url])
        #expect(text.standardOutput.contains("5 finished tasks match (5 error); nothing was deleted (--dry-run)."), "\(text.standardOutput)")
        #expect(try await count(pool, "SELECT count(*) FROM orcastra.tasks") == 42)
        await pool.shutdown()
    }

    @Test func archiveHoldsWhatWasDeletedReadableWithGzip() async throws {
        let (url, pool) = try await database()
        try await load(pool, count: 120, state: "complete", days: 40)
        try await load(pool, count: 10, state: "complete", days: 10)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("orcastra-archive-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        // Small batches: the archive is several gzip members, which gzip reads as one stream.
        let run = try await orcastra.run(["prune", "--older-than", "30d", "--archive", folder.path, "--batch-rows", "200",
                                          "--json", "--database-url", url])
        #expect(run.status == 0, "\(run.standardError)")
        let output = try json(run.standardOutput)
        #expect(output["tasks"] as? Int == 120)
        // Per task: the task, 2 steps, 2 results, 1 edge. Their 3 transitions go with their week's
        // partitions, dropped once no task of that week is left: here both tables' partitions.
        #expect(output["rows"] as? Int == 120 * 6)
        #expect(output["history_partitions_dropped"] as? Int == 2)
        #expect((output["history_bytes_dropped"] as? Int ?? 0) > 0)
        #expect((output["batches"] as? Int ?? 0) > 1)
        let path = try #require(output["archive"] as? String)
        #expect(path.hasPrefix(folder.path) && path.hasSuffix(".jsonl.gz"))
        #expect(output["archive_bytes"] as? Int == (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int))

        let gunzip = try await onDedicatedThread { try ProcessRunner.run("/bin/gzip", ["-dc", path]) }
        #expect(gunzip.status == 0, "\(gunzip.standardError)")
        let lines = gunzip.standardOutput.split(separator: "\n")
        #expect(lines.count == 120)
        let first = try json(String(lines[0]))
        let task = try #require(first["task"] as? [String: Any])
        #expect(task["state"] as? String == "complete")
        #expect(task["template"] as? String == "shop/orders@1.0.0")
        let steps = try #require(first["steps"] as? [[String: Any]])
        #expect(steps.map { $0["name"] as? String } == ["first", "second"])
        #expect(steps.map { ($0["result"] as? [String: Any])?["step"] as? String } == ["first", "second"])
        #expect((first["edges"] as? [Any])?.count == 1)
        #expect((first["task_transitions"] as? [Any])?.count == 1)
        #expect((first["step_transitions"] as? [Any])?.count == 2)
        // Every archived task is gone with what it owned; the newer ones are all there.
        let archived = try lines.map { try #require((try json(String($0))["task"] as? [String: Any])?["id"] as? String) }
        #expect(Set(archived).count == 120)
        #expect(try await count(pool, "SELECT count(*) FROM orcastra.tasks WHERE id = ANY (\(archived)::uuid[])") == 0)
        #expect(try await count(pool, "SELECT count(*) FROM orcastra.tasks") == 10)
        #expect(try await count(pool, "SELECT count(*) FROM orcastra.steps") == 20)
        #expect(try await count(pool, "SELECT count(*) FROM orcastra.step_transitions") == 20)

        let text = try await orcastra.run(["prune", "--older-than", "5d", "--archive", folder.path, "--database-url", url])
        #expect(text.status == 0, "\(text.standardError)")
        #expect(text.standardOutput.contains("Deleted 10 tasks with everything they owned: 60 rows"), "\(text.standardOutput)")
        #expect(text.standardOutput.contains("Dropped 2 history partitions no task is left in"), "\(text.standardOutput)")
        #expect(text.standardOutput.contains("gzipped; read with gzip -dc"), "\(text.standardOutput)")
        #expect(try await count(pool, "SELECT count(*) FROM orcastra.tasks") == 0)
        await pool.shutdown()
    }

    @Test func stateAndTemplateFiltersLimitWhatIsDeleted() async throws {
        let (url, pool) = try await database()
        try await load(pool, count: 4, state: "complete", days: 40)
        try await load(pool, count: 3, state: "cancelled", days: 40)
        let run = try await orcastra.run(["prune", "--older-than", "30d", "--state", "cancelled", "--template", "shop/orders",
                                          "--json", "--database-url", url])
        #expect(run.status == 0, "\(run.standardError)")
        #expect(try json(run.standardOutput)["tasks"] as? Int == 3)
        #expect(try await count(pool, "SELECT count(*) FROM orcastra.tasks WHERE state = 'complete'") == 4)
        #expect(try await count(pool, "SELECT count(*) FROM orcastra.tasks WHERE state = 'cancelled'") == 0)
        let unknown = try await orcastra.run(["prune", "--older-than", "30d", "--template", "shop/ordres", "--database-url", url])
        #expect(unknown.status == 66, "\(unknown.standardError)")
        #expect(unknown.standardError.contains("--template shop/ordres: no such template is registered"), "\(unknown.standardError)")
        await pool.shutdown()
    }

    @Test(arguments: [
        (["--older-than", "30x"], "--older-than '30x' is not a duration"),
        (["--older-than", "30"], "--older-than '30' has no unit; add one, e.g. 30d"),
        (["--older-than", "forever"], "--older-than forever matches no task"),
        (["--state", "in_progress"], "--state in_progress: in_progress tasks are not finished and are never pruned. Use complete, error, cancelled, resolved_manually."),
        (["--state", "done"], "--state done: 'done' is not a task state"),
        (["--template", "shop"], "--template 'shop' is not NAMESPACE/NAME"),
        (["--template", "shop/orders@1.0.0"], "--template 'shop/orders@1.0.0' is not NAMESPACE/NAME"),
        (["--batch-rows", "0"], "--batch-rows must be between 1 and 10000"),
        (["--batch-rows", "20000"], "--batch-rows must be between 1 and 10000"),
        (["--dry-run", "--archive", "/tmp"], "--archive writes what is deleted; --dry-run deletes nothing"),
        (["--archive", "/etc/hostname"], "--archive /etc/hostname is a file; give a folder"),
    ])
    func badFlagsAreNamedWithTheFix(arguments: [String], message: String) async throws {
        // No database is reached: every one of these is refused before connecting.
        let run = try await orcastra.run(["prune"] + arguments, environment: ["ORCASTRA_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"])
        #expect(run.status == 64, "\(run.standardError)")
        #expect(run.standardError.contains(message), "\(run.standardError)")
    }

    /// The orchestrators' retention defaults, from flags or ORCASTRA_* variables, are checked
    /// before anything connects; a bad one names its flag or variable and how to fix it.
    @Test(arguments: [
        ([], ["ORCASTRA_RETENTION_ERROR": "30x"], "ORCASTRA_RETENTION_ERROR: The value '30x' is invalid for '--retention-error <period>': '30x' is not a duration; write numbers each followed by d, h, m, s, ms"),
        ([], ["ORCASTRA_RETENTION_COMPLETE": "10s"], "ORCASTRA_RETENTION_COMPLETE: The value '10s' is invalid for '--retention-complete <period>': '10s' is shorter than the shortest retention, 1m"),
        (["--retention-complete", "7"], [:], "'7' has no unit; add one, e.g. 7d for days, or write forever"),
        (["--prune-interval", "0s"], [:], "The value '0s' is invalid for '--prune-interval <duration>': a duration must be longer than zero; or write off to turn pruning off"),
        ([], ["ORCASTRA_PRUNE_INTERVAL": "soon"], "ORCASTRA_PRUNE_INTERVAL: The value 'soon' is invalid for '--prune-interval <duration>'"),
        (["--prune-batch-rows", "20000"], [:], "The value '20000' is invalid for '--prune-batch-rows <rows>': must be between 1 and 10000 (rows per transaction), got 20000"),
        ([], ["ORCASTRA_PRUNE_BATCH_ROWS": "many"], "ORCASTRA_PRUNE_BATCH_ROWS: The value 'many' is invalid for '--prune-batch-rows <rows>': 'many' is not a whole number"),
        (["--history-weeks-ahead", "600"], [:], "The value '600' is invalid for '--history-weeks-ahead <weeks>': must be between 0 and 520 weeks, got 600"),
        ([], ["ORCASTRA_HISTORY_WEEKS_AHEAD": "four"], "ORCASTRA_HISTORY_WEEKS_AHEAD: The value 'four' is invalid for '--history-weeks-ahead <weeks>': 'four' is not a whole number of weeks"),
        (["--history-maintenance-interval", "500ms"], [:], "The value '500ms' is invalid for '--history-maintenance-interval <duration>': must be at least 1s, got 500ms"),
    ])
    func badRetentionSettingsOfTheOrchestratorAreNamed(arguments: [String], environment: [String: String], message: String) async throws {
        let run = try await CommandLineTool("orcastra-orchestrator").run(
            arguments, environment: environment.merging(["ORCASTRA_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"]) { a, _ in a })
        #expect(run.status == 64, "\(run.standardError)")
        #expect(run.standardError.contains(message), "\(run.standardError)")
    }

    @Test func templateShowSaysItsRetention() async throws {
        let url = try await TestDatabases.shared.makeDatabase()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("orcastra-retention-\(UUID().uuidString).yaml")
        try Self.template.replacingOccurrences(of: "version: 1.0.0\n", with: "version: 1.0.0\nretention: {complete: 2d, error: forever}\n")
            .write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let register = try await orcastra.run(["template", "register", file.path, "--database-url", url])
        #expect(register.status == 0, "\(register.standardError)")
        let show = try await orcastra.run(["template", "show", "shop/orders", "--database-url", url])
        #expect(show.standardOutput.contains("Retention: complete 2d, error forever; other states: the orchestrators' defaults."), "\(show.standardOutput)")
    }

    /// A task with a step still running (cancelled while its worker works) and a task another
    /// transaction holds a step of are both left for later; the rest goes.
    @Test func runningAndLockedTasksAreLeftForLater() async throws {
        let (url, pool) = try await database()
        try await load(pool, count: 5, state: "complete", days: 40)
        try await load(pool, count: 1, state: "cancelled", days: 40, stepState: "in_progress")
        let held = try await pool.query("""
            SELECT t.id::text AS id, (SELECT min(s.id) FROM orcastra.steps s WHERE s.task_id = t.id) AS step
            FROM orcastra.tasks t WHERE t.state = 'complete' ORDER BY t.id LIMIT 1
            """).rows[0]
        let heldTask = try held.decode("id", as: String.self)
        let heldStep = try held.decode("step", as: Int64.self)
        let holder = try await PostgresConnection.connect(url)
        let orcastra = orcastra
        let run = try await holder.withTransaction { holder in
            _ = try await holder.query("SELECT id FROM orcastra.steps WHERE id = \(heldStep) FOR UPDATE")
            return try await orcastra.run(["prune", "--older-than", "30d", "--json", "--database-url", url])
        }
        await holder.close()
        #expect(run.status == 0, "\(run.standardError)")
        #expect(try json(run.standardOutput)["tasks"] as? Int == 4)
        let left = try await pool.query("SELECT id::text AS id, state FROM orcastra.tasks ORDER BY state").rows
            .map { "\(try $0.decode("id", as: String.self)) \(try $0.decode("state", as: String.self))" }
        #expect(left.count == 2, "\(left)")
        #expect(left.contains("\(heldTask) complete"), "\(left)")
        #expect(left.contains { $0.hasSuffix(" cancelled") }, "\(left)")
        // Once the lock is gone, the held task goes too; the running step still keeps its task.
        let again = try await orcastra.run(["prune", "--older-than", "30d", "--json", "--database-url", url])
        #expect(try json(again.standardOutput)["tasks"] as? Int == 1, "\(again.output)")
        #expect(try await count(pool, "SELECT count(*) FROM orcastra.tasks WHERE state = 'cancelled'") == 1)
        await pool.shutdown()
    }

    /// An orchestrator's batch holds the oldest tasks while an operator prunes: the command looks
    /// past them and deletes the rest, instead of giving up (exit 5) on a batch of held tasks.
    @Test func tasksHeldAtTheFrontDoNotStopThePrune() async throws {
        let (url, pool) = try await database()
        // Finished 40, 39 and 38 days ago: one candidate a batch with --batch-rows 10.
        for days in [40, 39, 38] { try await load(pool, count: 1, state: "complete", days: days) }
        let oldest = try await pool.query("SELECT id::text AS id FROM orcastra.tasks ORDER BY finished_at LIMIT 1").rows[0]
            .decode("id", as: String.self)
        let holder = try await PostgresConnection.connect(url)
        let orcastra = orcastra
        let run = try await holder.withTransaction { holder in
            _ = try await holder.query(SQL(unsafeRaw: "SELECT id FROM orcastra.steps WHERE task_id = '\(oldest)' ORDER BY id FOR UPDATE"))
            return try await orcastra.run(["prune", "--older-than", "30d", "--batch-rows", "10", "--json", "--database-url", url])
        }
        await holder.close()
        #expect(run.status == 0, "\(run.output)")
        #expect(try json(run.standardOutput)["tasks"] as? Int == 2, "\(run.output)")
        let left = try await pool.query("SELECT id::text AS id FROM orcastra.tasks").rows.map { try $0.decode("id", as: String.self) }
        #expect(left == [oldest])
        await pool.shutdown()
    }
}
