import Foundation
import OrcastraPostgres
import OrcastraTemplates
import OrcastraTesting
import Testing

/// Issue 11 (Tasker Core's case): numbers travel through contexts, parents and results exactly,
/// with real worker processes and Python steps in between.
extension EndToEndTests {
@Suite struct NumberFidelityTests {
    /// Four leaves square 2^4, 2^6, 2^10 and 2^12; two pairs multiply them (2^20, 2^44); the root
    /// multiplies the pairs: 2^64, one more than UInt64 can hold.
    static let tree = """
        namespace: e2e
        name: powers
        version: 1.0.0
        steps:
          - {name: leaf0, command: [python3, -c, "import json,sys; d=json.load(sys.stdin); print(json.dumps({'square': d['context']['n'][0] ** 2}))"]}
          - {name: leaf1, command: [python3, -c, "import json,sys; d=json.load(sys.stdin); print(json.dumps({'square': d['context']['n'][1] ** 2}))"]}
          - {name: leaf2, command: [python3, -c, "import json,sys; d=json.load(sys.stdin); print(json.dumps({'square': d['context']['n'][2] ** 2}))"]}
          - {name: leaf3, command: [python3, -c, "import json,sys; d=json.load(sys.stdin); print(json.dumps({'square': d['context']['n'][3] ** 2}))"]}
          - name: left
            depends_on: [leaf0, leaf1]
            command: [python3, -c, "import json,sys; p=json.load(sys.stdin)['parents']; print(json.dumps({'product': p['leaf0']['square'] * p['leaf1']['square']}))"]
          - name: right
            depends_on: [leaf2, leaf3]
            command: [python3, -c, "import json,sys; p=json.load(sys.stdin)['parents']; print(json.dumps({'product': p['leaf2']['square'] * p['leaf3']['square']}))"]
          - name: root
            depends_on: [left, right]
            command: [python3, -c, "import json,sys; p=json.load(sys.stdin)['parents']; print(json.dumps({'product': p['left']['product'] * p['right']['product']}))"]
        """

    /// A step echoes its whole input; its child echoes what it was given.
    static let echo = """
        namespace: e2e
        name: echo
        version: 1.0.0
        steps:
          - {name: echo, command: [python3, -c, "import json,sys; print(json.dumps(json.load(sys.stdin)))"]}
          - {name: child, depends_on: [echo], command: [python3, -c, "import json,sys; print(json.dumps(json.load(sys.stdin)))"]}
        """

    static func resultText(_ cluster: ProcessCluster, _ task: UUID, _ step: String) async throws -> String {
        try await cluster.pool.queryRowAny("""
            SELECT r.result::text AS result FROM orcastra.step_results r JOIN orcastra.steps s ON s.id = r.step_id
            WHERE s.task_id = \(task) AND s.name = \(step)
            """).decode("result")
    }

    @Test(.timeLimit(.minutes(5)))
    func productOfSquaresIsTwoToTheSixtyFourExactly() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.tree)
        try cluster.worker(["--concurrency", "4"])
        let task = try await cluster.submit("e2e/powers", context: ["n": [16, 64, 1024, 4096]])
        #expect(try await cluster.settled(task) == "complete", "\(cluster.logs)")
        #expect(try await Self.resultText(cluster, task, "right") == #"{"product": 17592186044416}"#)
        #expect(try await Self.resultText(cluster, task, "root") == #"{"product": 18446744073709551616}"#)
        #expect(try await cluster.result(task, step: "root") == ["product": .number(try #require(JSONNumber("18446744073709551616")))])
    }

    @Test(.timeLimit(.minutes(5)))
    func contextNumbersReachStepsAndResultsUnchanged() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.echo)
        try cluster.worker()
        let context = try JSONValue(parsing: #"{"amount": 500.0, "big": 170141183460469231731687303715884105727}"#)
        let task = try await cluster.submit("e2e/echo", context: context)
        #expect(try await cluster.settled(task) == "complete", "\(cluster.logs)")

        let exact = #"{"big": 170141183460469231731687303715884105727, "amount": 500.0}"#
        let stored: String = try await cluster.pool.queryRowAny("SELECT context::text AS context FROM orcastra.tasks WHERE id = \(task)").decode("context")
        #expect(stored == exact)
        // The step saw the context exactly and handed it back exactly.
        #expect(try await Self.resultText(cluster, task, "echo") == #"{"context": \#(exact), "parents": {}}"#)
        // The child received the step's result (and the context) exactly.
        #expect(try await Self.resultText(cluster, task, "child")
                == #"{"context": \#(exact), "parents": {"echo": {"context": \#(exact), "parents": {}}}}"#)
    }
}
}
