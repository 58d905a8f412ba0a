import Foundation
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates

/// The schedule run (issue 14): N schedules firing every second on two orchestrators. Lateness is
/// the time from each occurrence to the commit that made its task visible
/// (`pg_xact_commit_timestamp`, when the server tracks commit times; else to the firing
/// transaction's start, which flatters it, and the figure says so).
extension Bench {
    struct ScheduleRun {
        var lateness = LatencySample()
        var measuredTo = "commit"
        var tasksPerSecond: [Double] = []
        var expected = 0
        var created = 0
        var duplicates = 0
    }

    func scheduleRun(count: Int, seconds: Int) async throws -> ScheduleRun {
        let yaml = "namespace: bench_sched\nname: tick\nversion: 1.0.0\nsteps:\n  - {name: a, handler: orcastra.noop}\n"
        let template = try TemplateParser.parse(yaml: yaml, file: "tick.yaml")
        _ = try await TemplateRegistry(pool: pool).register(LoadedTemplate(file: "tick.yaml", source: yaml, template: template))
        // All first due 3 s from now, on a whole second; a second orchestrator joins the first.
        let start = try await pool.query("SELECT date_trunc('second', clock_timestamp()) + interval '3 seconds' AS at").first!.decode("at", as: Date.self)
        let end = start.addingTimeInterval(Double(seconds - 1))
        try await pool.query("""
            INSERT INTO orcastra.schedules (namespace, name, template_name, cron, end_at, next_fire_at)
            SELECT 'bench_sched', 's' || n, 'tick', '* * * * * *', \(end), \(start) FROM generate_series(1, \(count)) AS n
            """)
        // Two orchestrators of their own, with the batch size asked for.
        await stopFirstOrchestrator()
        try spawnOrchestrator(["--schedule-batch", "\(options.scheduleBatch)"])
        try spawnOrchestrator(["--schedule-batch", "\(options.scheduleBatch)"])
        try await Task.sleep(for: .seconds(Double(seconds) + 5))

        var run = ScheduleRun()
        run.expected = count * seconds
        let tracked = try await pool.query("SELECT current_setting('track_commit_timestamp') = 'on' AS on").first!.decode("on", as: Bool.self)
        run.measuredTo = tracked ? "commit" : "transaction start"
        let visible: SQL = tracked ? "pg_xact_commit_timestamp(t.xmin)" : "t.created_at"
        let rows = try await pool.query("""
            SELECT (extract(epoch FROM \(visible) - (t.context->>'scheduled_for')::timestamptz) * 1000)::float8 AS late_ms,
                   floor(extract(epoch FROM (t.context->>'scheduled_for')::timestamptz - \(start)))::int AS second
            FROM orcastra.tasks t JOIN orcastra.templates tp ON tp.id = t.template_id
            WHERE tp.namespace = 'bench_sched'
            """)
        var perSecond = [Int](repeating: 0, count: seconds)
        for row in rows {
            run.lateness.add(milliseconds: try row.decode("late_ms"))
            let second: Int = try row.decode("second")
            if perSecond.indices.contains(second) { perSecond[second] += 1 }
        }
        run.created = rows.rows.count
        run.duplicates = try await pool.query("""
            SELECT count(*) - count(DISTINCT t.idempotency_key) AS d FROM orcastra.tasks t JOIN orcastra.templates tp ON tp.id = t.template_id
            WHERE tp.namespace = 'bench_sched'
            """).first!.decode("d", as: Int.self)
        // Tasks per second in 10-second windows: flat means the engine keeps up for the whole run.
        run.tasksPerSecond = stride(from: 0, to: seconds, by: 10).map { window in
            let slice = perSecond[window..<min(window + 10, seconds)]
            return Double(slice.reduce(0, +)) / Double(slice.count)
        }
        try await pool.query("DELETE FROM orcastra.schedules WHERE namespace = 'bench_sched'")
        return run
    }
}
