import Foundation
import OrcastraMigrations
import OrcastraPostgres
import OrcastraStateMachines
import OrcastraStore
import OrcastraTemplates
import OrcastraDevDB

/// The benchmark scenarios, run against one database with real worker and orchestrator processes.
final class Bench: @unchecked Sendable {
    let url: String
    let options: BenchCommand
    let pool: PostgresPool
    let creator: TaskCreator
    let arrivals = Arrivals()
    private let listener: PostgresListener
    private var following: Task<Void, Never>?
    private var processes: [BackgroundProcess] = []
    private var firstOrchestrator: BackgroundProcess?
    private var templates: [String: StoredTemplate] = [:]
    private let logFolder = NSTemporaryDirectory() + "orcastra-bench-logs-\(getpid())"

    init(url: String, options: BenchCommand) async throws {
        self.url = url
        self.options = options
        pool = PostgresPool(conninfo: url, maximumConnections: 8)
        creator = TaskCreator(pool: pool)
        try FileManager.default.createDirectory(atPath: logFolder, withIntermediateDirectories: true)
        let connection = try await PostgresConnection.connect(url)
        try await Migrator.bundled().migrate(on: connection)
        await connection.close()
        let registry = TemplateRegistry(pool: pool)
        let noop = "handler: orcastra.noop"
        let definitions = [
            "idle": "namespace: bench_idle\nname: idle\nversion: 1.0.0\nsteps:\n  - {name: a, \(noop)}\n",
            "single": "namespace: bench\nname: single\nversion: 1.0.0\nsteps:\n  - {name: a, \(noop)}\n",
            "linear": "namespace: bench\nname: linear\nversion: 1.0.0\nsteps:\n  - {name: a, \(noop)}\n  - {name: b, \(noop), depends_on: [a]}\n  - {name: c, \(noop), depends_on: [b]}\n  - {name: d, \(noop), depends_on: [c]}\n",
            "burn": "namespace: bench_burn\nname: burn\nversion: 1.0.0\nsteps:\n  - {name: a, \(noop)}\n  - {name: b, \(noop), depends_on: [a]}\n  - {name: c, \(noop), depends_on: [b]}\n  - {name: d, \(noop), depends_on: [c]}\n",
            "probe": "namespace: bench_probe\nname: probe\nversion: 1.0.0\nsteps:\n  - {name: a, \(noop)}\n  - {name: b, \(noop), depends_on: [a]}\n",
        ]
        for (key, yaml) in definitions {
            let template = try TemplateParser.parse(yaml: yaml, file: "\(key).yaml")
            _ = try await registry.register(LoadedTemplate(file: "\(key).yaml", source: yaml, template: template))
            templates[key] = try await registry.find(TemplateReference(namespace: template.namespace, name: template.name))
        }
        listener = PostgresListener(conninfo: url, channels: [ProtocolChannel.taskEvents])
        following = arrivals.follow(listener)
    }

    func serverVersion() async throws -> String {
        try await pool.query("SHOW server_version").first!.decode(at: 0, as: String.self)
    }

    func stop() async {
        for process in processes { process.send(SIGTERM) }
        for process in processes { if await process.wait(timeout: .seconds(10)) == nil { await process.stop() } }
        processes.removeAll()
        listener.stop()
        following?.cancel()
        await pool.shutdown()
    }

    // MARK: - Processes

    private func sibling(_ name: String) -> String {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent(name).path
    }

    @discardableResult
    func spawn(_ name: String, _ arguments: [String]) throws -> BackgroundProcess {
        var metrics: [String] = []
        if options.metrics {
            if name == "orcastra-worker" { metrics = ["--metrics-address", "127.0.0.1:0"] }
            if name == "orcastra-orchestrator" { metrics = ["--http-address", "127.0.0.1:0"] }
        }
        let process = try BackgroundProcess(sibling(name), arguments + metrics + ["--log-level", "warning"],
                                            environment: ["ORCASTRA_DATABASE_URL": url],
                                            logPath: "\(logFolder)/\(name)-\(processes.count).log")
        processes.append(process)
        return process
    }

    /// Stops the orchestrator the run started with (a scenario that wants its own).
    func stopFirstOrchestrator() async {
        guard let first = firstOrchestrator else { return }
        first.send(SIGTERM)
        if await first.wait(timeout: .seconds(10)) == nil { await first.stop() }
        firstOrchestrator = nil
    }

    func spawnOrchestrator(_ arguments: [String] = []) throws {
        try spawn("orcastra-orchestrator", arguments)
    }

    func startFanOutWorkers() throws -> [BackgroundProcess] { try startWorkers(namespace: "bench_fan") }

    private func startWorkers(namespace: String) throws -> [BackgroundProcess] {
        try (0..<options.workers).map { _ in
            try spawn("orcastra-worker", ["--namespace", namespace, "--concurrency", "\(options.concurrency)",
                                          "--claim-batch", "\(options.claimBatch)"])
        }
    }

    // MARK: - Scenarios

    func run(into report: inout BenchmarkReport) async throws {
        try await probeSetup()
        let emptyQueries = try await measureHotQueries()
        firstOrchestrator = try spawn("orcastra-orchestrator", [])
        _ = try startWorkers(namespace: "bench")
        try await Task.sleep(for: .milliseconds(500))

        let submission = try await submissionLatency()
        report.add("task submission (init), p50", submission.percentile(50), "ms")
        report.add("task submission (init), p99", submission.percentile(99), "ms", target: "≤ 3 ms", met: submission.percentile(99) <= 3)

        let single = try await singleStepLatency()
        report.add("single step, submit → handler start, p50", single.percentile(50), "ms", target: "≤ 2 ms", met: single.percentile(50) <= 2)
        report.add("single step, submit → handler start, p99", single.percentile(99), "ms")

        let (observed, server) = try await linearLatency()
        report.add("4-step linear, submit → complete seen by client, p50", observed.percentile(50), "ms")
        report.add("4-step linear, submit → complete seen by client, p95", observed.percentile(95), "ms")
        report.add("4-step linear, submit → complete seen by client, p99", observed.percentile(99), "ms", target: "≤ 10 ms", met: observed.percentile(99) <= 10)
        report.add("4-step linear, submit → complete seen by client, p99.9", observed.percentile(99.9), "ms")
        report.add("4-step linear, server-side created → finished, p50", server.percentile(50), "ms")

        var burnRate: Double?
        if options.burnDown > 0 {
            let burn = try await burnDown()
            burnRate = burn.stepsPerSecond
            report.add("burn-down of \(options.burnDown) 4-step tasks", burn.stepsPerSecond, "steps/s", target: "≥ 3,000", met: burn.stepsPerSecond >= 3000)
            report.add("commits per executed step, at full load", burn.commitsPerStep, "commits", target: "< 2", met: burn.commitsPerStep < 2)
            report.add("dead tuples in orcastra.steps after burn-down", Double(burn.deadSteps), "rows")
            report.add("HOT updates of orcastra.steps, whole run", burn.hotUpdatePercent, "%", target: "≥ 50 %", met: burn.hotUpdatePercent >= 50)
            report.add("transition rows per step, whole run", burn.transitionsPerStep, "rows")
            if options.rate > 0 {
                let continuous = try await continuousRate()
                report.add("continuous submit at \(options.rate) tasks/s: completed", continuous.stepsPerSecond, "steps/s")
                report.add("continuous submit: created → finished, p50", continuous.latency.percentile(50), "ms")
                report.add("continuous submit: created → finished, p99", continuous.latency.percentile(99), "ms")
            }
        }

        if options.fanOut > 0 {
            let fan = try await fanOutRun(count: options.fanOut)
            report.add("fan-out of \(options.fanOut): create_task making the instances", fan.creationMilliseconds, "ms",
                       target: "≤ 200 ms", met: fan.creationMilliseconds <= 200)
            if let burnRate {
                report.add("fan-out of \(options.fanOut) + fan-in", fan.stepsPerSecond, "steps/s", target: "≥ 80 % of burn-down",
                           met: fan.stepsPerSecond >= 0.8 * burnRate,
                           note: String(format: "%.0f %% of the burn-down's %.0f steps/s; %d instances complete", 100 * fan.stepsPerSecond / burnRate, burnRate, fan.instances))
            } else {
                report.add("fan-out of \(options.fanOut) + fan-in", fan.stepsPerSecond, "steps/s",
                           note: "\(fan.instances) instances complete; --burn-down > 0 compares it with the plain burn-down")
            }
        }

        if options.schedules > 0 {
            let run = try await scheduleRun(count: options.schedules, seconds: options.scheduleSeconds)
            let label = "\(options.schedules) schedules/s"
            report.add("\(label): fire lateness to \(run.measuredTo), p50", run.lateness.percentile(50), "ms")
            report.add("\(label): fire lateness to \(run.measuredTo), p99", run.lateness.percentile(99), "ms",
                       target: "≤ 50 ms", met: run.lateness.percentile(99) <= 50)
            report.add("\(label): tasks created of \(run.expected)", Double(run.created), "tasks",
                       target: "all", met: run.created == run.expected)
            report.add("\(label): occurrences with two tasks", Double(run.duplicates), "tasks", target: "0", met: run.duplicates == 0)
            let rates = run.tasksPerSecond.map { String(format: "%.0f", $0) }.joined(separator: " ")
            report.add("\(label): tasks/s, lowest 10-s window", run.tasksPerSecond.min() ?? 0, "tasks/s", note: "by 10 s: \(rates)")
        }

        if options.history > 0 {
            try await loadHistory(options.history)
            let loadedQueries = try await measureHotQueries()
            for (name, empty) in emptyQueries.times.sorted(by: { $0.key < $1.key }) {
                let loaded = loadedQueries.times[name] ?? .nan
                let flat = loaded <= max(empty * 1.2, empty + 0.05)
                report.add("\(name) query, empty → \(options.history / 1000)k finished tasks", loaded, "ms",
                           target: "flat ±20%", met: flat, note: String(format: "empty %.3f ms", empty))
            }
            report.plans = loadedQueries.plans
        }
    }

    /// 50 tasks of a namespace no worker serves: enqueued, waiting and running steps for the query probes.
    private func probeSetup() async throws {
        guard let probe = templates["probe"] else { return }
        for _ in 0..<50 { _ = try await creator.create(TaskRequest(template: TemplateReference(namespace: "bench_probe", name: "probe")), from: probe) }
    }

    private func submissionLatency() async throws -> LatencySample {
        var sample = LatencySample()
        let idle = templates["idle"]!
        let request = TaskRequest(template: TemplateReference(namespace: "bench_idle", name: "idle"))
        for _ in 0..<options.submissions {
            let started = ContinuousClock.now
            _ = try await creator.create(request, from: idle)
            sample.add(milliseconds: (ContinuousClock.now - started).milliseconds)
        }
        try await pool.query("DELETE FROM orcastra.tasks WHERE template_id = \(idle.id)")
        return sample
    }

    private func singleStepLatency() async throws -> LatencySample {
        let single = templates["single"]!
        let request = TaskRequest(template: TemplateReference(namespace: "bench", name: "single"))
        var submitted: [(UUID, Date)] = []
        for _ in 0..<options.singleStep {
            let at = Date()
            let id = try await creator.create(request, from: single).taskID
            submitted.append((id, at))
            _ = await arrivals.wait(for: id.uuidString.lowercased())
        }
        let rows = try await pool.query("""
            SELECT t.task_id, min(t.created_at) AS claimed FROM orcastra.step_transitions t
            JOIN orcastra.tasks k ON k.id = t.task_id
            WHERE k.template_id = \(single.id) AND t.to_state = 'in_progress' GROUP BY t.task_id
            """)
        var claimed: [UUID: Date] = [:]
        for row in rows { claimed[try row.decode("task_id")] = try row.decode("claimed") }
        var sample = LatencySample()
        for (id, at) in submitted {
            if let start = claimed[id] { sample.add(milliseconds: start.timeIntervalSince(at) * 1000) }
        }
        return sample
    }

    private func linearLatency() async throws -> (LatencySample, LatencySample) {
        let linear = templates["linear"]!
        let request = TaskRequest(template: TemplateReference(namespace: "bench", name: "linear"))
        let since = try await databaseNow()
        var observed = LatencySample()
        var missing = 0
        for _ in 0..<options.linear {
            let started = ContinuousClock.now
            let id = try await creator.create(request, from: linear).taskID
            if let arrived = await arrivals.wait(for: id.uuidString.lowercased()) {
                observed.add(milliseconds: (arrived - started).milliseconds)
            } else {
                missing += 1
            }
        }
        if missing > 0 { print("  warning: \(missing) completions were not seen within 30 s") }
        var server = LatencySample()
        for row in try await pool.query("""
            SELECT (extract(epoch FROM finished_at - created_at) * 1000)::float8 AS ms FROM orcastra.tasks
            WHERE template_id = \(linear.id) AND state = 'complete' AND created_at >= \(since)
            """) {
            server.add(milliseconds: try row.decode("ms"))
        }
        return (observed, server)
    }

    struct Throughput {
        var stepsPerSecond: Double
        var commitsPerStep: Double
        var deadSteps: Int
        /// Share of UPDATEs of orcastra.steps that were HOT (no index entry written), since the database was made.
        var hotUpdatePercent: Double
        var transitionsPerStep: Double
    }

    private func submitConcurrently(_ count: Int, template key: String, submitters: Int = 4) async throws {
        let stored = templates[key]!
        let reference = TemplateReference(namespace: stored.template.namespace, name: stored.template.name)
        let creator = self.creator
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<submitters {
                let share = count / submitters + (index < count % submitters ? 1 : 0)
                group.addTask {
                    for _ in 0..<share { _ = try await creator.create(TaskRequest(template: reference), from: stored) }
                }
            }
            try await group.waitForAll()
        }
    }

    /// The database's clock, to pick this run's tasks by `created_at` (set by the same clock).
    private func databaseNow() async throws -> Date {
        try await pool.query("SELECT now() AS now").first!.decode("now", as: Date.self)
    }

    private func commits() async throws -> Int {
        try await pool.query("SELECT xact_commit::int8 FROM pg_stat_database WHERE datname = current_database()").first!.decode(at: 0, as: Int.self)
    }

    private func burnDown() async throws -> Throughput {
        let burn = templates["burn"]!
        // Only this run's tasks count: a database that ran the bench before holds earlier runs' tasks
        // of the same template, whose steps would stretch the window back to the first run.
        let since = try await databaseNow()
        print("  … submitting \(options.burnDown) tasks for the burn-down")
        try await submitConcurrently(options.burnDown, template: "burn")
        try await pool.query("VACUUM ANALYZE orcastra.steps")
        try await pool.query("VACUUM ANALYZE orcastra.tasks")
        let commitsBefore = try await commits()
        let started = ContinuousClock.now
        _ = try startWorkers(namespace: "bench_burn")
        while try await pool.query("""
            SELECT count(*) FROM orcastra.tasks WHERE template_id = \(burn.id) AND state IN ('in_progress', 'waiting_for_retry')
            """).first!.decode(at: 0, as: Int.self) > 0 {
            try await Task.sleep(for: .milliseconds(100))
            if ContinuousClock.now - started > .seconds(600) { throw BenchError.stalled("burn-down") }
        }
        let commitsAfter = try await commits()
        let window = try await pool.query("""
            SELECT (extract(epoch FROM max(s.finished_at) - min(s.started_at)))::float8 AS seconds, count(*) AS steps
            FROM orcastra.steps s JOIN orcastra.tasks t ON t.id = s.task_id WHERE t.template_id = \(burn.id) AND t.created_at >= \(since)
            """).first!
        let seconds: Double = try window.decode("seconds")
        let steps: Int = try window.decode("steps")
        let dead = try await pool.query("SELECT n_dead_tup::int8 FROM pg_stat_user_tables WHERE schemaname = 'orcastra' AND relname = 'steps'").first?.decode(at: 0, as: Int.self) ?? -1
        let churn = try await pool.query("""
            SELECT coalesce(100.0 * n_tup_hot_upd / nullif(n_tup_upd, 0), 0)::float8 AS hot,
                   (SELECT count(*) FROM orcastra.step_transitions)::float8 / greatest((SELECT count(*) FROM orcastra.steps), 1) AS transitions
            FROM pg_stat_user_tables WHERE schemaname = 'orcastra' AND relname = 'steps'
            """).first
        return Throughput(stepsPerSecond: Double(steps) / seconds, commitsPerStep: Double(commitsAfter - commitsBefore) / Double(steps), deadSteps: dead,
                          hotUpdatePercent: try churn?.decode("hot", as: Double.self) ?? 0,
                          transitionsPerStep: try churn?.decode("transitions", as: Double.self) ?? 0)
    }

    private func continuousRate() async throws -> (stepsPerSecond: Double, latency: LatencySample) {
        let burn = templates["burn"]!
        let reference = TemplateReference(namespace: "bench_burn", name: "burn")
        let startedAt = Date()
        let total = options.rate * options.rateSeconds
        let interval = Duration.seconds(1) / options.rate
        let creator = self.creator
        let begin = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Two submitters on interleaved slots, so one slow commit does not stall the pace.
            for lane in 0..<2 {
                group.addTask {
                    var index = lane
                    while index < total {
                        try await Task.sleep(until: begin + interval * index)
                        _ = try await creator.create(TaskRequest(template: reference), from: burn)
                        index += 2
                    }
                }
            }
            try await group.waitForAll()
        }
        let achievedSeconds = (ContinuousClock.now - begin).milliseconds / 1000
        while try await pool.query("""
            SELECT count(*) FROM orcastra.tasks WHERE template_id = \(burn.id) AND state IN ('in_progress', 'waiting_for_retry')
            """).first!.decode(at: 0, as: Int.self) > 0 {
            try await Task.sleep(for: .milliseconds(100))
        }
        var latency = LatencySample()
        var steps = 0.0
        for row in try await pool.query("""
            SELECT (extract(epoch FROM finished_at - created_at) * 1000)::float8 AS ms FROM orcastra.tasks
            WHERE template_id = \(burn.id) AND created_at >= \(startedAt)
            """) {
            latency.add(milliseconds: try row.decode("ms"))
            steps += 4
        }
        if achievedSeconds > Double(options.rateSeconds) * 1.1 {
            print("  note: submission fell behind the requested rate (took \(String(format: "%.1f", achievedSeconds)) s)")
        }
        // The figures are read back from the tasks: one deleted meanwhile (an orchestrator's
        // retention with a short `complete:` period, a prune) is missing from both.
        if latency.count < total {
            print("  note: \(total - latency.count) of the \(total) tasks submitted are gone (pruned during the run?): "
                  + "the continuous figures count only the \(latency.count) left")
        }
        return (steps / max(achievedSeconds, 0.001), latency)
    }

    // MARK: - Hot queries against history

    struct QueryTimes {
        var times: [String: Double] = [:]
        var plans: [String: String] = [:]
    }

    /// Median execution time (EXPLAIN ANALYZE) of each hot query over 30 runs, with its plan.
    private func measureHotQueries() async throws -> QueryTimes {
        let probeTasks = try await pool.query("SELECT id FROM orcastra.tasks WHERE template_id = \(templates["probe"]!.id) AND state = 'in_progress' LIMIT 50").rows.map { try $0.decode("id", as: UUID.self) }
        let probeSteps = try await pool.query("SELECT id FROM orcastra.steps WHERE task_id = ANY(\(probeTasks)) AND name = 'a'").rows.map { try $0.decode("id", as: Int64.self) }
        let queries: [(String, SQL)] = [
            ("claim (SKIP LOCKED pick)", """
                SELECT s.id FROM orcastra.step_queue q JOIN orcastra.steps s ON s.id = q.step_id
                WHERE q.namespace = 'bench_probe' AND s.state = 'enqueued'
                ORDER BY q.priority DESC, q.enqueued_at, q.step_id LIMIT 32 FOR UPDATE OF s SKIP LOCKED
                """),
            ("discovery (children of finished parents)", """
                SELECT e.child_id, count(*) FROM orcastra.step_links e JOIN orcastra.steps c ON c.id = e.child_id
                WHERE e.parent_id = ANY(\(probeSteps)) GROUP BY e.child_id
                """),
            ("settle (live steps of tasks)", """
                SELECT task_id, count(*) FILTER (WHERE state IN ('enqueued', 'in_progress')) FROM orcastra.steps
                WHERE task_id = ANY(\(probeTasks)) GROUP BY task_id
                """),
            ("due retries", """
                SELECT s.id FROM orcastra.step_retries r JOIN orcastra.steps s ON s.id = r.step_id
                WHERE r.visible_at <= now() AND s.state = 'waiting_for_retry' AND s.visible_at <= now()
                ORDER BY r.visible_at LIMIT 1000 FOR UPDATE OF s SKIP LOCKED
                """),
            // What `orcastra task show` reads: one task's log, through its row and its week's partition.
            ("task log (task show)", """
                WITH owner AS MATERIALIZED (SELECT t.id, t.created_at FROM orcastra.tasks t WHERE t.id = \(probeTasks[0]))
                SELECT st.id, st.to_state FROM owner o
                JOIN orcastra.step_transitions st ON st.task_id = o.id AND st.task_created_at = o.created_at
                UNION ALL
                SELECT tt.id, tt.to_state FROM owner o
                JOIN orcastra.task_transitions tt ON tt.task_id = o.id AND tt.task_created_at = o.created_at
                """),
            ("expired leases", """
                SELECT s.id FROM orcastra.step_leases l JOIN orcastra.steps s ON s.id = l.step_id
                WHERE s.state = 'in_progress' AND s.lease_expires_at < clock_timestamp()
                ORDER BY s.lease_expires_at LIMIT 1000 FOR UPDATE OF s SKIP LOCKED
                """),
        ]
        var result = QueryTimes()
        try await pool.withConnection { connection in
            for (name, query) in queries {
                var sample = LatencySample()
                var plan = ""
                for run in 0..<30 {
                    try await connection.execute("BEGIN")
                    let rows = try await connection.query(SQL("EXPLAIN (ANALYZE, BUFFERS) ") + query)
                    try await connection.execute("ROLLBACK")
                    let lines = try rows.rows.map { try $0.decode(at: 0, as: String.self) }
                    if let line = lines.first(where: { $0.hasPrefix("Execution Time:") }),
                       let value = Double(line.split(separator: " ")[2]) {
                        sample.add(milliseconds: value)
                    }
                    if run == 29 { plan = lines.joined(separator: "\n") }
                }
                result.times[name] = sample.percentile(50)
                result.plans[name] = plan
            }
        }
        return result
    }

    /// Loads `count` finished two-step tasks with set-based SQL (results, edges and their history:
    /// 2 task and 6 step transitions each, keyed to the task's creation week as the triggers do).
    private func loadHistory(_ count: Int) async throws {
        print("  … loading \(count) finished tasks of history")
        let probe = templates["probe"]!
        let started = ContinuousClock.now
        try await pool.withConnection { connection in
            try await connection.execute("""
                INSERT INTO orcastra.tasks (template_id, state, state_reason, context, created_at, started_at, finished_at)
                SELECT \(probe.id), 'complete', 'history', '{}'::jsonb, now() - interval '1 day', now() - interval '1 day', now() - interval '1 day'
                FROM generate_series(1, \(count))
                """)
            try await connection.execute("""
                INSERT INTO orcastra.steps (task_id, name, namespace, state, state_reason, max_attempts, attempts, pending_parents, enqueued_at, started_at, finished_at)
                SELECT t.id, s.name, 'bench_probe', 'complete', 'history', 3, 1, 0, t.created_at, t.created_at, t.created_at
                FROM orcastra.tasks t CROSS JOIN (VALUES ('a'), ('b')) AS s(name)
                WHERE t.state_reason = 'history'
                """)
            try await connection.execute("""
                INSERT INTO orcastra.step_edges (parent_id, child_id)
                SELECT a.id, b.id FROM orcastra.steps a JOIN orcastra.steps b ON b.task_id = a.task_id AND b.name = 'b'
                WHERE a.state_reason = 'history' AND a.name = 'a'
                """)
            try await connection.execute("""
                INSERT INTO orcastra.step_results (step_id, result)
                SELECT id, '{}'::jsonb FROM orcastra.steps WHERE state_reason = 'history'
                """)
            try await connection.execute("""
                INSERT INTO orcastra.task_transitions (task_id, from_state, to_state, reason, task_created_at)
                SELECT t.id, m.f, m.t, 'history', t.created_at FROM orcastra.tasks t
                CROSS JOIN (VALUES (NULL, 'in_progress'), ('in_progress', 'complete')) AS m(f, t)
                WHERE t.state_reason = 'history'
                """)
            try await connection.execute("""
                INSERT INTO orcastra.step_transitions (step_id, task_id, from_state, to_state, attempt, reason, task_created_at)
                SELECT s.id, s.task_id, m.f, m.t, 1, 'history', t.created_at FROM orcastra.steps s JOIN orcastra.tasks t ON t.id = s.task_id
                CROSS JOIN (VALUES (NULL, 'enqueued'), ('enqueued', 'in_progress'), ('in_progress', 'complete')) AS m(f, t)
                WHERE s.state_reason = 'history'
                """)
            try await connection.execute("VACUUM ANALYZE orcastra.tasks")
            try await connection.execute("VACUUM ANALYZE orcastra.steps")
            try await connection.execute("VACUUM ANALYZE orcastra.task_transitions")
            try await connection.execute("VACUUM ANALYZE orcastra.step_transitions")
            try await connection.execute("VACUUM ANALYZE orcastra.step_edges")
        }
        print("  … loaded in \(String(format: "%.1f", (ContinuousClock.now - started).milliseconds / 1000)) s")
    }
}

enum BenchError: Error, CustomStringConvertible {
    case stalled(String)
    var description: String {
        switch self {
        case .stalled(let what): "The \(what) made no progress for 10 minutes; see the worker logs."
        }
    }
}
