import Foundation
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates

/// The fan-out run (issue 19, `--fan-out N`): one task whose root step fans out over N items of its
/// context (`for_each`), each instance a no-op, then a fan-in step that waits for all of them.
/// Creating the task makes the N instances in one statement (the time printed is the whole
/// `create_task` call, seen by the client); the rate is executed steps (N instances + the fan-in)
/// over the time from the first start to the last finish — the burn-down's formula, so the two
/// compare.
extension Bench {
    struct FanOutRun {
        var creationMilliseconds: Double
        var stepsPerSecond: Double
        var instances: Int
    }

    func fanOutRun(count: Int) async throws -> FanOutRun {
        let yaml = """
            namespace: bench_fan
            name: fan
            version: 1.0.0
            steps:
              - {name: each, for_each: "$.context.items", handler: orcastra.noop}
              - {name: join, depends_on: [each], handler: orcastra.noop}
            """
        let registry = TemplateRegistry(pool: pool)
        let template = try TemplateParser.parse(yaml: yaml, file: "fan.yaml")
        _ = try await registry.register(LoadedTemplate(file: "fan.yaml", source: yaml, template: template))
        let stored = try await registry.find(TemplateReference(namespace: "bench_fan", name: "fan"))
        try await pool.query("VACUUM ANALYZE orcastra.steps")
        _ = try startFanOutWorkers()
        try await Task.sleep(for: .milliseconds(500))
        print("  … creating one task that fans out into \(count) instances")
        let items = JSONValue.array((0..<count).map { .number(JSONNumber($0)) })
        let clock = ContinuousClock()
        let start = clock.now
        let task = try await creator.create(TaskRequest(template: TemplateReference(namespace: "bench_fan", name: "fan"),
                                                        context: ["items": items]), from: stored).taskID
        let creation = clock.now - start
        let began = clock.now
        while try await pool.query("SELECT state FROM orcastra.tasks WHERE id = \(task)").first!.decode("state", as: String.self) == "in_progress" {
            try await Task.sleep(for: .milliseconds(100))
            if clock.now - began > .seconds(600) { throw BenchError.stalled("fan-out") }
        }
        let window = try await pool.query("""
            SELECT (extract(epoch FROM max(s.finished_at) - min(s.started_at)))::float8 AS seconds,
                   count(*) FILTER (WHERE s.started_at IS NOT NULL) AS steps,
                   count(*) FILTER (WHERE s.fanout_of IS NOT NULL AND s.state = 'complete') AS instances
            FROM orcastra.steps s WHERE s.task_id = \(task)
            """).first!
        let seconds: Double = try window.decode("seconds")
        return FanOutRun(creationMilliseconds: creation.milliseconds, stepsPerSecond: Double(try window.decode("steps", as: Int.self)) / seconds,
                         instances: try window.decode("instances"))
    }
}
