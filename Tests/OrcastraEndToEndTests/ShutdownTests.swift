import Foundation
import Logging
import OrcastraPostgres
import OrcastraTemplates
import OrcastraTesting
import OrcastraWorker
import Testing

/// Graceful shutdown claims nothing after the signal, handlers see it, and a forced exit leaves
/// no command running (issue 11, defects 2 and 5).
extension EndToEndTests {
@Suite(.serialized, .timeLimit(.minutes(5))) struct ShutdownTests {
    @Test func nothingIsClaimedAfterTheFirstSignal() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register("""
            namespace: e2e
            name: second
            version: 1.0.0
            steps:
              - {name: work, command: [sh, -c, "sleep 1; echo '{}'"]}
            """)
        var tasks: [UUID] = []
        for _ in 0..<10 { tasks.append(try await cluster.submit("e2e/second")) }
        let worker = try cluster.worker(namespace: "e2e", ["--concurrency", "2", "--grace-period", "3500ms"])
        #expect(await waitUntil(within: .seconds(10)) {
            try await cluster.count("SELECT count(*) FROM orcastra.steps WHERE state = 'in_progress'") == 2
        }, "\(cluster.logs)")
        try await Task.sleep(for: .milliseconds(200))
        let signalled: Date = try await cluster.pool.query("SELECT clock_timestamp() AS t").first!.decode("t")
        worker.send(SIGTERM)
        #expect(await worker.wait(timeout: .seconds(10)) == 0, "\(cluster.logs)")
        #expect(try await cluster.count("""
            SELECT count(*) FROM orcastra.step_transitions WHERE to_state = 'in_progress' AND created_at > \(signalled)
            """) == 0, "\(cluster.logs)")
        // The two running steps finished within the grace period; the other eight still wait.
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.steps WHERE state = 'complete'") == 2)
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.steps WHERE state = 'enqueued'") == 8)
    }

    @Test func aSecondSignalKillsEveryCommandAndExitsWithSIGTERMsCode() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        let pids = NSTemporaryDirectory() + "orcastra-forced-\(UUID().uuidString).pids"
        defer { unlink(pids) }
        try await cluster.register("""
            namespace: e2e
            name: long
            version: 1.0.0
            steps:
              - {name: work, command: [sh, -c, "\(recordingPIDs(in: pids, sleep: 60))"]}
            """)
        let worker = try cluster.worker(namespace: "e2e", ["--grace-period", "30s"])
        _ = try await cluster.submit("e2e/long")
        #expect(await waitUntil(within: .seconds(10)) { recordedPIDs(in: pids).count == 2 }, "\(cluster.logs)")
        worker.send(SIGTERM)
        try await Task.sleep(for: .milliseconds(300))
        worker.send(SIGTERM)
        #expect(await worker.wait(timeout: .seconds(5)) == 128 + SIGTERM, "\(cluster.logs)")
        for pid in recordedPIDs(in: pids) {
            #expect(await waitUntil(within: .seconds(2)) { processIsGone(pid) }, "process \(pid) of the step still runs")
        }
    }

    struct WaitsForShutdown: StepHandler {
        static let name = "e2e.waits_for_shutdown"
        func run(_ input: JSONValue, context: StepContext) async throws -> [String: Bool] {
            while !context.isCancelled { try await Task.sleep(for: .milliseconds(10)) }
            return ["saw_shutdown": context.isShuttingDown]
        }
    }

    @Test func handlersSeeTheShutdownAndTheirOutcomeIsStillReported() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register("""
            namespace: inproc
            name: waits
            version: 1.0.0
            steps:
              - {name: work, handler: e2e.waits_for_shutdown}
            """)
        var handlers = HandlerRegistry.builtIn
        handlers.register(WaitsForShutdown())
        var configuration = WorkerConfiguration(conninfo: cluster.url, namespace: "inproc")
        configuration.gracePeriod = .seconds(10)
        configuration.pollInterval = .milliseconds(100)
        let worker = Worker(configuration: configuration, handlers: handlers, logger: Logger(label: "test"))
        let running = Task { await worker.run() }
        let task = try await cluster.submit("inproc/waits")
        #expect(await waitUntil(within: .seconds(10)) {
            try await cluster.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(task) AND state = 'in_progress'") == 1
        })
        worker.shutDownGracefully()
        await running.value
        #expect(try await cluster.taskState(task) == "complete")
        #expect(try await cluster.result(task, step: "work") == ["saw_shutdown": true])
    }

    enum IdleDatabase: String, CaseIterable, Sendable { case migrated, unmigrated }

    /// An idle worker exits at once on SIGTERM: also while it waits for a database that has no
    /// schema yet, where it used to finish its backoff sleep first (up to 5 s; 1–2.4 s measured).
    @Test(arguments: IdleDatabase.allCases)
    func anIdleWorkerExitsWithinHalfASecondOfSIGTERM(database: IdleDatabase) async throws {
        let url = database == .migrated ? nil : try await TestDatabases.shared.makeEmptyDatabase()
        let cluster = try await ProcessCluster(url: url)
        defer { Task { await cluster.shutdown() } }
        let worker = try cluster.worker(namespace: "e2e")
        let ready = database == .migrated ? "worker started" : "run `orcastra migrate`"
        #expect(await waitUntil(within: .seconds(10)) { worker.log.contains(ready) }, "\(cluster.logs)")
        // Long enough for the retry backoff to reach its longer sleeps (0.1, 0.2, … 1.6, 3.2 s).
        try await Task.sleep(for: .milliseconds(3200))
        let signalled = ContinuousClock.now
        worker.send(SIGTERM)
        let status = await worker.wait(timeout: .seconds(10))
        let took = ContinuousClock.now - signalled
        #expect(status == 0, "\(cluster.logs)")
        #expect(took < .milliseconds(500), "took \(took) to exit: \(cluster.logs)")
    }
}
}
