import Foundation
import OrcastraPostgres
import OrcastraTemplates
import OrcastraTesting
import Testing

/// Swift handlers in a user's own worker, and graceful shutdown.
extension EndToEndTests {
@Suite(.timeLimit(.minutes(5))) struct WorkerLifecycleTests {
    var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    @Test func swiftHandlersInAUsersOwnWorker() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(try String(contentsOf: repositoryRoot.appendingPathComponent("Examples/GreetingWorker/greeting.yaml"), encoding: .utf8))
        try cluster.spawnTool("greeting-worker", [])
        let task = try await cluster.submit("greetings/hello", context: ["name": "Ada"])
        #expect(try await cluster.settled(task) == "complete", "\(cluster.logs)")
        #expect(try await cluster.result(task, step: "shout") == ["shout": "HELLO, ADA! (ATTEMPT 1)"])
        // A permanent failure from Swift skips the retries.
        let empty = try await cluster.submit("greetings/hello", context: ["name": ""])
        #expect(try await cluster.settled(empty) == "error")
        let hello = try await cluster.stepRow(empty, step: "hello")
        #expect(try hello.decode("attempts", as: Int.self) == 1)
        #expect(try hello.decode("last_error", as: String.self) == "name is empty: nobody to greet")
    }

    @Test func sigtermLetsRunningStepsFinish() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register("""
            namespace: e2e
            name: second
            version: 1.0.0
            steps:
              - {name: work, command: [sh, -c, "sleep 1; echo '{\\"finished\\": true}'"]}
            """)
        let worker = try cluster.worker()
        let task = try await cluster.submit("e2e/second")
        let started = await waitUntil(within: .seconds(10), every: .milliseconds(10)) {
            try await cluster.steps(task)["work"] == "in_progress"
        }
        try #require(started, "the step never started: \(cluster.logs)")
        worker.send(SIGTERM)
        #expect(await worker.wait(timeout: .seconds(10)) == 0, "\(cluster.logs)")
        #expect(try await cluster.taskState(task) == "complete")
    }

    @Test func sigtermHandsBackStepsThatOutliveTheGracePeriod() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register("""
            namespace: e2e
            name: forever
            version: 1.0.0
            steps:
              - {name: work, command: [sh, -c, "sleep 30"]}
            """)
        let worker = try cluster.worker(["--grace-period", "300ms"])
        let task = try await cluster.submit("e2e/forever")
        let started = await waitUntil(within: .seconds(10), every: .milliseconds(10)) {
            try await cluster.steps(task)["work"] == "in_progress"
        }
        try #require(started, "the step never started: \(cluster.logs)")
        worker.send(SIGTERM)
        #expect(await worker.wait(timeout: .seconds(10)) == 0, "\(cluster.logs)")
        let step = try await cluster.stepRow(task, step: "work")
        #expect(try step.decode("state", as: String.self) == "enqueued")
        #expect(try step.decode("attempts", as: Int.self) == 0, "a handed-back attempt does not count")
        #expect(try step.decode("state_reason", as: String.self) == "handed back by a worker shutting down")
    }
}
}
