import Foundation
import OrcastraPostgres
import OrcastraTemplates
import OrcastraTesting
import Testing

/// Exactly-once effects under crashes (docs/transactions.md): `ledger-worker` (Examples/LedgerWorker)
/// is killed with SIGKILL at random moments while it posts 500 transfers, and restarted each time.
/// With its transactional handler every completed step has exactly one ledger row; the same
/// handler run without the step's transaction (`--plain`) leaves duplicates, which is what the
/// first test proves cannot happen.
@Suite(.serialized) struct ExactlyOnceTests {
    static let taskCount = 500
    static let minimumKills = 10

    static var ledgerYAML: String {
        get throws {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            return try String(contentsOf: root.appendingPathComponent("Examples/LedgerWorker/ledger.yaml"), encoding: .utf8)
        }
    }

    struct Run {
        var kills: Int
        var completedSteps: Int
        var rerunSteps: Int
        var seconds: Double
    }

    /// Submits the tasks, then kills and restarts the worker at random moments (at least
    /// `minimumKills` times, each while tasks were still unfinished) until every task is complete.
    static func postUnderKills(_ cluster: ProcessCluster, workerArguments: [String]) async throws -> Run {
        try await cluster.register(try ledgerYAML)
        try cluster.orchestrator(["--poll-interval", "100ms"])
        let arguments = ["--lease", "2s", "--concurrency", "4", "--poll-interval", "200ms", "--post-delay", "40ms",
                         "--log-level", "info"] + workerArguments
        var worker = try cluster.spawnTool("ledger-worker", arguments)
        let started = ContinuousClock.now
        for index in 0..<taskCount {
            _ = try await cluster.submit("ledger/post", context: ["from": .string("a\(index)"), "to": .string("b\(index)"), "cents": .integer(Int64(index + 1))])
        }
        func unfinished() async throws -> Int {
            try await cluster.count("SELECT count(*) FROM orcastra.tasks WHERE state <> 'complete'")
        }
        var kills = 0
        while kills < minimumKills || ContinuousClock.now - started < .seconds(20) {
            try await Task.sleep(for: .milliseconds(Int.random(in: 300...1200)))
            guard try await unfinished() > 0 else { break }
            worker.send(SIGKILL)
            #expect(await worker.wait(timeout: .seconds(5)) == 128 + SIGKILL)
            kills += 1
            worker = try cluster.spawnTool("ledger-worker", arguments)
        }
        #expect(kills >= minimumKills, "the work finished after \(kills) kills: kill sooner or make the work longer")
        let finished = await waitUntil(within: .seconds(60), every: .milliseconds(100)) { try await unfinished() == 0 }
        let left = try await unfinished()
        #expect(finished, "\(left) tasks unfinished\n\(cluster.logs)")
        let seconds = Double((ContinuousClock.now - started).components.seconds)
        return Run(kills: kills,
                   completedSteps: try await cluster.count("SELECT count(*) FROM orcastra.steps WHERE state = 'complete'"),
                   rerunSteps: try await cluster.count("SELECT count(*) FROM orcastra.steps WHERE attempts > 1"),
                   seconds: seconds)
    }

    @Test(.timeLimit(.minutes(6))) func transactionalHandlerWritesExactlyOneRowPerStepAcrossKills() async throws {
        try await Reliability.withCluster { cluster in
            let run = try await Self.postUnderKills(cluster, workerArguments: [])
            #expect(run.completedSteps == Self.taskCount * 3)
            // The kills did hit running steps: some ran more than once.
            #expect(run.rerunSteps > 0, "no step ran twice: the kills proved nothing")
            // None missing, none extra, none doubled (the key would refuse a double; count anyway).
            #expect(try await cluster.count("SELECT count(*) FROM ledger.entries") == run.completedSteps)
            #expect(try await cluster.count("SELECT count(DISTINCT step_id) FROM ledger.entries") == run.completedSteps)
            #expect(try await cluster.count("""
                SELECT count(*) FROM orcastra.steps s
                WHERE s.state = 'complete' AND NOT EXISTS (SELECT 1 FROM ledger.entries e WHERE e.step_id = s.id)
                """) == 0)
            // Each row is the completing attempt's own, and matches the step's stored result.
            #expect(try await cluster.count("""
                SELECT count(*) FROM ledger.entries e JOIN orcastra.steps s ON s.id = e.step_id
                JOIN orcastra.step_results r ON r.step_id = s.id
                WHERE e.attempt <> s.attempts OR (r.result ->> 'cents')::bigint <> e.cents OR s.task_id <> e.task_id
                """) == 0)
            // The debit and credit of each transfer balance.
            #expect(try await cluster.count("SELECT coalesce(sum(cents), 0)::bigint FROM ledger.entries") == 0)
            try await Reliability.expectInvariantsHold(cluster.url, logs: cluster.logs)
            print("exactly once: \(run.kills) kills, \(run.completedSteps) steps, \(run.rerunSteps) ran again, \(run.seconds) s")
        }
    }

    @Test(.timeLimit(.minutes(6))) func plainHandlerWritesDuplicatesAcrossKills() async throws {
        try await Reliability.withCluster { cluster in
            let run = try await Self.postUnderKills(cluster, workerArguments: ["--plain"])
            #expect(run.completedSteps == Self.taskCount * 3)
            let duplicates = try await cluster.count("SELECT count(*) - count(DISTINCT step_id) FROM ledger.plain_entries")
            // What the transactional handler prevents: a kill between the insert's commit and the
            // step's report runs the step again, and writes again.
            #expect(duplicates > 0, "\(run.kills) kills left no duplicate: the comparison proves nothing")
            #expect(try await cluster.count("""
                SELECT count(*) FROM orcastra.steps s
                WHERE s.state = 'complete' AND NOT EXISTS (SELECT 1 FROM ledger.plain_entries e WHERE e.step_id = s.id)
                """) == 0)
            try await Reliability.expectInvariantsHold(cluster.url, logs: cluster.logs)
            print("plain: \(run.kills) kills, \(run.completedSteps) steps, \(run.rerunSteps) ran again, \(duplicates) duplicate rows, \(run.seconds) s")
        }
    }
}
