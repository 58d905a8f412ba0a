import Foundation
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraDevDB

/// `--transactional`: the same handler (Examples/LedgerWorker's `ledger.post`, one INSERT per step)
/// run plain — its insert committed on its own, the step reported in the worker's batches — and
/// transactional — its insert and the step's completion in one transaction per step, on a
/// connection of its own (docs/transactions.md). 4-step latency and burn-down, side by side.
extension Bench {
    struct LedgerRun {
        var latency: LatencySample
        var stepsPerSecond: Double
    }

    func runTransactionalComparison(into report: inout BenchmarkReport) async throws {
        let registry = TemplateRegistry(pool: pool)
        let post = "handler: ledger.post"
        let yaml = "namespace: ledger\nname: bench_linear\nversion: 1.0.0\nsteps:\n  - {name: a, \(post)}\n  - {name: b, \(post), depends_on: [a]}\n  - {name: c, \(post), depends_on: [b]}\n  - {name: d, \(post), depends_on: [c]}\n"
        let template = try TemplateParser.parse(yaml: yaml, file: "bench_linear.yaml")
        _ = try await registry.register(LoadedTemplate(file: "bench_linear.yaml", source: yaml, template: template))
        let stored = try await registry.find(TemplateReference(namespace: "ledger", name: "bench_linear"))
        try spawnOrchestrator()

        var runs: [Bool: LedgerRun] = [:]
        for transactional in [false, true] {
            let label = transactional ? "transactional" : "plain"
            print("  … \(label) ledger.post")
            let worker = try spawn("ledger-worker", ["--concurrency", "\(options.concurrency)"] + (transactional ? [] : ["--plain"]))
            // The worker creates its tables, then listens.
            let ready = ContinuousClock.now + .seconds(30)
            while try await pool.query("SELECT to_regclass('ledger.plain_entries') IS NOT NULL AS ready").first!.decode("ready", as: Bool.self) == false {
                if ContinuousClock.now > ready { throw BenchError.stalled("ledger-worker start") }
                try await Task.sleep(for: .milliseconds(100))
            }
            try await Task.sleep(for: .milliseconds(500))
            let latency = try await ledgerLatency(stored)
            let rate = options.burnDown > 0 ? try await ledgerBurnDown(stored) : .nan
            runs[transactional] = LedgerRun(latency: latency, stepsPerSecond: rate)
            worker.send(SIGTERM)
            if await worker.wait(timeout: .seconds(30)) == nil { await worker.stop() }
            report.add("\(label): 4-step linear, submit → complete, p50", latency.percentile(50), "ms")
            report.add("\(label): 4-step linear, submit → complete, p99", latency.percentile(99), "ms")
            if options.burnDown > 0 { report.add("\(label): burn-down of \(options.burnDown) 4-step tasks", rate, "steps/s") }
        }
        let plain = runs[false]!, transactional = runs[true]!
        let latencyRatio = transactional.latency.percentile(50) / plain.latency.percentile(50)
        report.add("transactional / plain, 4-step p50", latencyRatio, "×", target: "≤ 1.2", met: latencyRatio <= 1.2)
        if options.burnDown > 0 {
            let rateRatio = plain.stepsPerSecond / transactional.stepsPerSecond
            report.add("plain / transactional, burn-down steps/s", rateRatio, "×", target: "≤ 1.2", met: rateRatio <= 1.2)
        }
    }

    private static func transfer(_ index: Int) -> TaskRequest {
        TaskRequest(template: TemplateReference(namespace: "ledger", name: "bench_linear"),
                    context: ["from": .string("a\(index)"), "to": .string("b\(index)"), "cents": .integer(Int64(index % 1000 + 1))])
    }

    private func ledgerLatency(_ stored: StoredTemplate) async throws -> LatencySample {
        var sample = LatencySample()
        var missing = 0
        for index in 0..<options.linear {
            let started = ContinuousClock.now
            let id = try await creator.create(Self.transfer(index), from: stored).taskID
            if let arrived = await arrivals.wait(for: id.uuidString.lowercased()) {
                sample.add(milliseconds: (arrived - started).milliseconds)
            } else {
                missing += 1
            }
        }
        if missing > 0 { print("  warning: \(missing) completions were not seen within 30 s") }
        return sample
    }

    /// Submits the tasks while the worker runs (it starts on them at once), and measures steps per
    /// second from the first step started to the last finished.
    private func ledgerBurnDown(_ stored: StoredTemplate) async throws -> Double {
        let count = options.burnDown
        let since = try await pool.query("SELECT now() AS now").first!.decode("now", as: Date.self)
        let creator = self.creator
        try await withThrowingTaskGroup(of: Void.self) { group in
            for submitter in 0..<4 {
                group.addTask {
                    for index in stride(from: submitter, to: count, by: 4) { _ = try await creator.create(Self.transfer(index), from: stored) }
                }
            }
            try await group.waitForAll()
        }
        let started = ContinuousClock.now
        while try await pool.query("""
            SELECT count(*) FROM orcastra.tasks WHERE template_id = \(stored.id) AND created_at >= \(since) AND state <> 'complete'
            """).first!.decode(at: 0, as: Int.self) > 0 {
            try await Task.sleep(for: .milliseconds(100))
            if ContinuousClock.now - started > .seconds(600) { throw BenchError.stalled("burn-down") }
        }
        let window = try await pool.query("""
            SELECT (extract(epoch FROM max(s.finished_at) - min(s.started_at)))::float8 AS seconds, count(*) AS steps
            FROM orcastra.steps s JOIN orcastra.tasks t ON t.id = s.task_id
            WHERE t.template_id = \(stored.id) AND t.created_at >= \(since)
            """).first!
        return Double(try window.decode("steps", as: Int.self)) / (try window.decode("seconds", as: Double.self))
    }
}
