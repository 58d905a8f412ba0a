import ArgumentParser
import Foundation
import OrcastraCommandLine
import OrcastraDevDB
import OrcastraMigrations
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates

/// `orcastra-bench`: measures Orcastra against the targets in DESIGN.md, with the orchestrator and
/// the workers as separate processes and a no-op handler, and prints a table.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orcastra-bench",
        abstract: "Measure latency, throughput, commits per step and query cost against the targets.",
        discussion: """
            Uses --database-url, or starts a throwaway local PostgreSQL (default settings: fsync and \
            synchronous commit on). Build in release mode first; the worker and orchestrator \
            binaries are taken from the same folder as this one.

            Examples:
              swift build -c release && .build/release/orcastra-bench
              .build/release/orcastra-bench --burn-down 5000 --history 0 --json bench.json
              .build/release/orcastra-bench --transactional --linear 500 --burn-down 5000
              .build/release/orcastra-bench --fan-out 10000 --burn-down 10000 --history 0 --rate 0
            """
    )

    @Option(help: "Sequential submissions for the task-submission latency.")
    var submissions = 1000
    @Option(help: "Sequential single-step tasks for submit → handler start.")
    var singleStep = 500
    @Option(help: "Sequential 4-step tasks for submit → complete.")
    var linear = 1000
    @Option(help: "Pre-submitted independent 4-step tasks for the burn-down throughput (0 skips).")
    var burnDown = 20_000
    @Option(help: "Items of the fan-out run: one task fanning out into this many no-op instances, then a fan-in; prints the creation time and the rate beside the burn-down's (0 skips). docs/benchmarks.md.")
    var fanOut = 0
    @Option(help: "Tasks per second for the continuous-rate run (0 skips).")
    var rate = 400
    @Option(help: "Seconds of the continuous-rate run.")
    var rateSeconds = 10
    @Option(help: "Finished tasks loaded before re-measuring the hot queries (0 skips).")
    var history = 1_000_000
    @Option(help: "Worker processes.")
    var workers = 1
    @Option(help: "Handlers each worker runs at once.")
    var concurrency = 64
    @Option(help: "Steps per claim.")
    var claimBatch = 32
    @Flag(help: "Turn synchronous_commit off on the throwaway server (not a durable setting).")
    var fastCommits = false
    @Option(help: "Schedules firing every second for the schedule run (0 skips); docs/schedules.md.")
    var schedules = 0
    @Option(help: "Seconds of the schedule run.")
    var scheduleSeconds = 60
    @Option(help: "The orchestrators' --schedule-batch in the schedule run.")
    var scheduleBatch = 200
    @Flag(help: "Instead of the usual runs: 4-step latency (--linear tasks) and burn-down (--burn-down tasks, submitted while the worker runs) of Examples/LedgerWorker's ledger.post, plain and then transactional (docs/transactions.md).")
    var transactional = false
    @Flag(help: "Record metrics: workers with --metrics-address and orchestrators with --http-address, each on a free loopback port (docs/metrics.md), to measure what recording costs.")
    var metrics = false
    @Option(help: "Write the figures as JSON to this file.")
    var json: String?
    @Option(name: .customLong("database-url"), help: "Benchmark this database instead of a throwaway one (it is migrated, and bench data are added).")
    var databaseURL: String?

    func run() async throws {
        var report = BenchmarkReport()
        report.machine = Machine.describe()
        report.settings = ["workers": "\(workers)", "concurrency": "\(concurrency)", "claim_batch": "\(claimBatch)",
                           "synchronous_commit": fastCommits ? "off" : "on", "build": Machine.buildKind()]
        var cluster: LocalPostgres?
        let url: String
        if let databaseURL {
            url = databaseURL
        } else {
            let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("orcastra-bench-\(getpid())")
            // Commit times: schedule lateness is measured to the commit that made each task visible.
            let local = try LocalPostgres(dataDirectory: directory, options: .init(durable: true, maxConnections: 200,
                                                                                 settings: ["track_commit_timestamp = on"]))
            url = try await local.start()
            cluster = local
            if fastCommits {
                let admin = try await PostgresConnection.connect(url)
                try await admin.execute("ALTER SYSTEM SET synchronous_commit = off")
                try await admin.execute("SELECT pg_reload_conf()")
                await admin.close()
            }
        }
        let bench = try await Bench(url: url, options: self)
        do {
            report.machine["postgresql"] = try await bench.serverVersion()
            print("Orcastra benchmark — \(report.machine["cpus"] ?? "?") CPUs, \(report.machine["memory"] ?? "?"), PostgreSQL \(report.machine["postgresql"] ?? "?"), \(report.settings["build"] ?? "") build")
            print("  \("measure".padding(toLength: 58, withPad: " ", startingAt: 0)) \("value".leftPadded(10)) \("unit".padding(toLength: 8, withPad: " ", startingAt: 0)) target")
            if transactional {
                try await bench.runTransactionalComparison(into: &report)
            } else {
                try await bench.run(into: &report)
            }
        } catch {
            await bench.stop()
            if let cluster { try? await cluster.destroy() }
            throw error
        }
        await bench.stop()
        if let cluster { try await cluster.destroy() }
        if let json { try report.write(to: json) }
    }
}
