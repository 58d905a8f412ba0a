import Foundation
import OrcastraPostgres
import OrcastraTemplates
import OrcastraTesting
import Testing

/// The whole loop with real processes: submit, orchestrator, workers, completion.
extension EndToEndTests {
@Suite(.timeLimit(.minutes(5))) struct WorkflowTests {
    static let linear = """
        namespace: e2e
        name: linear
        version: 1.0.0
        steps:
          - {name: a, handler: orcastra.noop}
          - {name: b, handler: orcastra.noop, depends_on: [a]}
          - {name: c, handler: orcastra.noop, depends_on: [b]}
          - {name: d, handler: orcastra.noop, depends_on: [c]}
        """

    /// Context flows into the first step; each child adds to its parents' results.
    static let dataflow = """
        namespace: e2e
        name: dataflow
        version: 1.0.0
        steps:
          - name: start
            command: [python3, -c, "import json,sys; d=json.load(sys.stdin); print(json.dumps({'n': d['context']['n']}))"]
          - name: left
            depends_on: [start]
            command: [python3, -c, "import json,sys; d=json.load(sys.stdin); print(json.dumps({'n': d['parents']['start']['n'] * 2}))"]
          - name: right
            depends_on: [start]
            command: [sh, -c, "echo '{\\"n\\": 1}'"]
          - name: join
            depends_on: [left, right]
            command: [python3, -c, "import json,sys; d=json.load(sys.stdin); p=d['parents']; print(json.dumps({'sum': p['left']['n'] + p['right']['n']}))"]
        """

    @Test func linearTaskCompletesInOrder() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.linear)
        try cluster.orchestrator()
        try cluster.worker()
        let task = try await cluster.submit("e2e/linear")
        #expect(try await cluster.settled(task) == "complete", "\(cluster.logs)")
        #expect(try await cluster.steps(task) == ["a": "complete", "b": "complete", "c": "complete", "d": "complete"])
        // Each step started after its parent finished.
        let order = try await cluster.pool.query("""
            SELECT s.name FROM orcastra.step_transitions t JOIN orcastra.steps s ON s.id = t.step_id
            WHERE t.task_id = \(task) AND t.to_state = 'in_progress' ORDER BY t.id
            """).rows.map { try $0.decode("name", as: String.self) }
        #expect(order == ["a", "b", "c", "d"])
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.task_transitions WHERE task_id = \(task) AND to_state = 'complete'") == 1)
        // Task ids are lower case everywhere, the worker's log lines included (issue 13).
        #expect(cluster.logs.contains(task.uuidString.lowercased()))
        #expect(!cluster.logs.contains(task.uuidString), "an upper-case task id in the logs")
    }

    /// A command's multi-line stderr stays on one log line (issue 13), and `step show` keeps it whole.
    @Test func multiLineErrorsStayOnOneLogLine() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register("""
            namespace: e2e
            name: traceback
            version: 1.0.0
            steps:
              - name: boom
                command: [sh, -c, "printf 'Traceback (most recent call last):\\n  File x\\nValueError: bad input\\n' >&2; exit 3"]
                retry: {max_attempts: 1}
            """)
        try cluster.worker()
        let task = try await cluster.submit("e2e/traceback")
        #expect(try await cluster.settled(task) == "error", "\(cluster.logs)")
        // The worker logs the failure once its report committed: wait for the line, not just the state.
        #expect(await waitUntil(within: .seconds(10)) { cluster.logs.contains("step attempt failed") }, "\(cluster.logs)")
        let failure = try #require(cluster.logs.split(separator: "\n").first { $0.contains("step attempt failed") }, "\(cluster.logs)")
        #expect(failure.contains(#"Traceback (most recent call last):\n  File x\nValueError: bad input"#), "\(failure)")
        let stored: String = try await cluster.stepRow(task, step: "boom").decode("last_error")
        #expect(stored.contains("\nValueError: bad input"))
    }

    @Test func contextFlowsThroughParentsToChildren() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.dataflow)
        try cluster.worker(["--concurrency", "4"])
        let task = try await cluster.submit("e2e/dataflow", context: ["n": 20])
        #expect(try await cluster.settled(task) == "complete", "\(cluster.logs)")
        #expect(try await cluster.result(task, step: "join") == ["sum": 41])
    }

    @Test func fanInOfFiftyParents() async throws {
        var yaml = "namespace: e2e\nname: fanin\nversion: 1.0.0\nsteps:\n"
        for index in 0..<50 { yaml += "  - {name: p\(index), handler: orcastra.noop}\n" }
        yaml += "  - {name: sink, handler: orcastra.echo, depends_on: [\((0..<50).map { "p\($0)" }.joined(separator: ", "))]}\n"
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(yaml)
        try cluster.worker(["--concurrency", "16"])
        try cluster.worker(["--concurrency", "16"])
        let task = try await cluster.submit("e2e/fanin")
        #expect(try await cluster.settled(task) == "complete", "\(cluster.logs)")
        guard case .object(let echo)? = try await cluster.result(task, step: "sink"), case .object(let parents)? = echo["parents"] else {
            Issue.record("sink has no echo result"); return
        }
        #expect(parents.count == 50)
        #expect(try await cluster.count("SELECT pending_parents FROM orcastra.steps WHERE task_id = \(task) AND name = 'sink'") == 0)
    }
}
}
