import Foundation
import OrcastraPostgres
import OrcastraTemplates
import OrcastraTesting
import Testing

/// Outcomes PostgreSQL cannot store, next to healthy work on the same worker: the poisoned step
/// ends in error with a message a person understands, and the healthy tasks finish at the normal
/// pace (issue 11, defect 1).
extension EndToEndTests {
@Suite(.serialized, .timeLimit(.minutes(5))) struct PoisonTests {
    static let healthy = """
        namespace: e2e
        name: healthy
        version: 1.0.0
        steps:
          - {name: a, handler: orcastra.noop}
          - {name: b, handler: orcastra.noop, depends_on: [a]}
        """

    struct Poison: Sendable, CustomTestStringConvertible {
        var name: String
        /// The step, as YAML.
        var step: String
        var state: String
        var error: String
        var testDescription: String { name }
    }

    static let poisons: [Poison] = [
        Poison(name: "a NUL byte in the command's stderr",
               step: #"{name: p, command: [sh, -c, 'printf "bad\\000byte" >&2; exit 1'], retry: {max_attempts: 1}}"#,
               state: "error", error: #"the command exited 1: bad\0byte (NUL characters shown as \0)"#),
        Poison(name: "a result with \\u0000, which jsonb refuses",
               step: #"{name: p, command: [python3, -c, 'import json; print(json.dumps({"s": "a" + chr(0) + "b"}))']}"#,
               state: "error", error: "result not storable: the string at $.s contains a NUL character"),
        Poison(name: "a retry delay beyond 2^31 milliseconds",
               step: "{name: p, command: [sh, -c, 'exit 1'], retry: {max_attempts: 2, backoff: fixed, initial_delay: 600h, max_delay: 600h, jitter: false}}",
               state: "waiting_for_retry", error: "the command exited 1"),
    ]

    @Test(arguments: poisons)
    func aPoisonedStepEndsAloneAndHealthyTasksFinish(_ poison: Poison) async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.healthy)
        try await cluster.register("""
            namespace: e2e
            name: poisoned
            version: 1.0.0
            steps:
              - \(poison.step)
            """)
        try cluster.orchestrator()
        try cluster.worker(namespace: "e2e", ["--concurrency", "2"])
        let poisoned = try await cluster.submit("e2e/poisoned")
        #expect(await waitUntil(within: .seconds(15)) {
            try await cluster.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(poisoned) AND state = \(poison.state)") == 1
        }, "\(cluster.logs)")
        let started = ContinuousClock.now
        var healthy: [UUID] = []
        for _ in 0..<10 { healthy.append(try await cluster.submit("e2e/healthy")) }
        for task in healthy {
            #expect(try await cluster.settled(task, within: .seconds(10)) == "complete", "\(cluster.logs)")
        }
        // The normal pace: ten two-step no-op tasks take well under a few seconds.
        #expect(ContinuousClock.now - started < .seconds(5))
        let step = try await cluster.stepRow(poisoned, step: "p")
        let error = try step.decode("last_error", as: String?.self) ?? ""
        #expect(error.contains(poison.error), "\(error)")
        #expect(try step.decode("lease_token", as: UUID?.self) == nil)   // no lease kept alive
        if poison.state == "waiting_for_retry" {
            let days = try await cluster.pool.query("""
                SELECT extract(epoch FROM visible_at - now()) / 3600 AS h FROM orcastra.steps WHERE task_id = \(poisoned)
                """).first!.decode("h", as: Double.self)
            #expect(abs(days - 600) < 1)
        }
    }

    @Test func aResultNestedTooDeeplyFailsItsStepWithAReadableError() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.healthy)
        try await cluster.register("""
            namespace: e2e
            name: deep
            version: 1.0.0
            steps:
              - {name: p, command: [python3, -c, 'print("[" * 5000 + "]" * 5000)'], retry: {max_attempts: 3, initial_delay: 10ms}}
            """)
        try cluster.worker(namespace: "e2e", ["--concurrency", "2", "--lease", "2s"])
        let deep = try await cluster.submit("e2e/deep")
        #expect(try await cluster.settled(deep, within: .seconds(15)) == "error", "\(cluster.logs)")
        let row = try await cluster.stepRow(deep, step: "p")
        let error = try row.decode("last_error", as: String?.self) ?? ""
        #expect(error.hasPrefix("result not storable: "), "\(error)")
        #expect(error.contains("deeper than"), "\(error)")
        #expect(try row.decode("attempts", as: Int.self) == 1)   // retrying cannot make it shallower
        let task = try await cluster.submit("e2e/healthy")
        #expect(try await cluster.settled(task, within: .seconds(10)) == "complete")
    }

    @Test func aStepWhoseStoredInputCannotBeReadFailsAlone() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register("""
            namespace: e2e
            name: one
            version: 1.0.0
            steps:
              - {name: p, handler: orcastra.echo, retry: {max_attempts: 1}}
            """)
        // A client in another language wrote a context deeper than Orcastra reads (jsonb takes it).
        let task = try await cluster.submit("e2e/one")
        let deep = String(repeating: "[", count: 3000) + String(repeating: "]", count: 3000)
        _ = try await cluster.pool.query("UPDATE orcastra.tasks SET context = \(deep)::jsonb WHERE id = \(task)")
        try cluster.worker(namespace: "e2e")
        #expect(try await cluster.settled(task, within: .seconds(15)) == "error", "\(cluster.logs)")
        let error = try await cluster.stepRow(task, step: "p").decode("last_error", as: String?.self) ?? ""
        #expect(error.hasPrefix("the step's input could not be read"), "\(error)")
    }

    @Test func aNamespaceOfSixtyThreeCharactersRunsLikeAnyOther() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        let namespace = String(repeating: "n", count: 40) + "-" + String(repeating: "a", count: 22)
        try await cluster.register("""
            namespace: \(namespace)
            name: long
            version: 1.0.0
            steps:
              - {name: a, handler: orcastra.noop}
              - {name: b, handler: orcastra.noop, depends_on: [a]}
            """)
        try cluster.worker(namespace: namespace, ["--poll-interval", "30s"])
        // Woken by its channel, not by polling: the first task completes long before the next poll.
        try await Task.sleep(for: .milliseconds(500))
        let task = try await cluster.submit("\(namespace)/long")
        #expect(try await cluster.settled(task, within: .seconds(5)) == "complete", "\(cluster.logs)")
    }
}
}
