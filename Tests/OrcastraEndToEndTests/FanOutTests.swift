import Foundation
import OrcastraInvariants
import OrcastraPostgres
import OrcastraTemplates
import OrcastraTesting
import Testing

/// `for_each:` + `max_parallel:` (issue 19) with real processes; the invariant checker
/// (fan-out-instances among its rules) runs after each.
extension EndToEndTests {
@Suite(.timeLimit(.minutes(5))) struct FanOutTests {
    static let fanOut = """
        namespace: e2e
        name: fanout
        version: 1.0.0
        steps:
          - name: split
            command: [python3, -c, "import json,sys; d=json.load(sys.stdin); print(json.dumps({'orders': list(range(d['context']['n']))}))"]
          - name: charge
            depends_on: [split]
            for_each: "$.parents.split.orders"
            max_parallel: 20
            handler: orcastra.echo
          - name: report
            depends_on: [charge]
            command: [python3, -c, "import json,sys; r=json.load(sys.stdin)['parents']['charge']; print(json.dumps({'count': len(r), 'indexes': [x['index'] for x in r], 'items': [x['item'] for x in r]}))"]
        """

    /// The most instances of `group` enqueued or running at once, replayed from the transitions.
    static func mostRunning(_ cluster: ProcessCluster, task: UUID) async throws -> Int {
        try await cluster.count("""
            SELECT coalesce(max(running), 0)::int FROM (
                SELECT sum(CASE WHEN t.to_state = 'enqueued' AND (t.from_state IS NULL OR t.from_state = 'pending') THEN 1
                                WHEN t.to_state IN ('complete', 'error', 'cancelled') AND t.from_state <> 'pending' THEN -1 ELSE 0 END)
                           OVER (ORDER BY t.id) AS running
                FROM orcastra.step_transitions t JOIN orcastra.steps s ON s.id = t.step_id
                WHERE t.task_id = \(task) AND s.fanout_of IS NOT NULL) x
            """)
    }

    @Test func aThousandItemsTwentyAtATimeFanInInOrder() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.fanOut)
        try cluster.orchestrator()
        try cluster.worker(["--concurrency", "16"])
        try cluster.worker(["--concurrency", "16"])
        let task = try await cluster.submit("e2e/fanout", context: ["n": 1000])
        #expect(try await cluster.settled(task, within: .seconds(240)) == "complete", "\(cluster.logs)")
        #expect(try await cluster.count("SELECT count(*)::int FROM orcastra.steps WHERE task_id = \(task) AND name LIKE 'charge[%]' AND state = 'complete'") == 1000)
        let most = try await Self.mostRunning(cluster, task: task)
        #expect(most <= 20 && most > 1, "at most \(most) instances ran at once")
        // Each instance saw its item and index (orcastra.echo returns them); the fan-in saw the
        // 1,000 results as parents.charge, in index order.
        let expected = JSONValue.array((0..<1000).map { .number(JSONNumber($0)) })
        guard case .object(let report)? = try await cluster.result(task, step: "report") else {
            Issue.record("report has no result"); return
        }
        #expect(report["count"] == 1000)
        #expect(report["indexes"] == expected)
        #expect(report["items"] == expected)
        try await ConditionTests.checkInvariants(cluster)
    }

    /// An empty list completes the fan-out step with [] at once; the fan-in runs with it.
    @Test func anEmptyListCompletesAtOnce() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.fanOut)
        try cluster.worker(["--concurrency", "4"])
        let task = try await cluster.submit("e2e/fanout", context: ["n": 0])
        #expect(try await cluster.settled(task) == "complete", "\(cluster.logs)")
        #expect(try await cluster.steps(task) == ["split": "complete", "charge": "complete", "report": "complete"])
        #expect(try await cluster.result(task, step: "charge") == .array([]))
        try await ConditionTests.checkInvariants(cluster)
    }
}
}
