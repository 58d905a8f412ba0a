import Foundation
import OrcastraInvariants
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

/// `for_each:` through the protocol functions (issue 19): the cap, a path that yields no list, an
/// operator's retry refused, and the one statement that makes 10,000 instances.
@Suite(.timeLimit(.minutes(3))) struct FanOutProtocolTests {
    static let template = """
        namespace: fan
        name: split
        version: 1.0.0
        steps:
          - {name: split, handler: fan.split}
          - {name: charge, depends_on: [split], for_each: "$.parents.split.orders", handler: fan.charge}
        """

    /// Creates a task, claims `split` and completes it with `result` on one connection, with
    /// `setup` run first on that connection; returns the task and how long the completion took.
    static func split(_ fixture: StoreFixture, result: String, setup: String? = nil) async throws -> (UUID, Duration) {
        let task = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "fan/split"))).taskID
        return try await fixture.pool.withConnection { connection in
            if let setup { try await connection.executeSimple(setup) }
            let row = try await connection.query("SELECT * FROM orcastra.claim_steps('fan', 'test-worker', 1, 30000)").first!
            let id: Int64 = try row.decode("step_id")
            let token: UUID = try row.decode("lease_token")
            let clock = ContinuousClock()
            let start = clock.now
            _ = try await connection.query("SELECT * FROM orcastra.complete_steps(ARRAY[\(id)]::bigint[], ARRAY[\(token)]::uuid[], ARRAY[\(result)::jsonb])")
            return (task, clock.now - start)
        }
    }

    static func charge(_ fixture: StoreFixture, _ task: UUID) async throws -> PostgresRow {
        try await fixture.pool.query("SELECT state, state_reason, last_error FROM orcastra.steps WHERE task_id = \(task) AND name = 'charge'").first!
    }

    @Test func aListOverTheCapFailsTheStepWithTheLimitNamed() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.template)
        let (task, _) = try await Self.split(fixture, result: #"{"orders": [1, 2, 3, 4]}"#, setup: "SET orcastra.for_each_limit = 3")
        let charge = try await Self.charge(fixture, task)
        #expect(try charge.decode("state", as: String.self) == "error")
        #expect(try charge.decode("last_error", as: String.self)
            == "for_each yielded 4 items; a fan-out makes at most 3 instances (setting orcastra.for_each_limit): split the list or raise the limit")
        #expect(try await fixture.pool.query("SELECT state FROM orcastra.tasks WHERE id = \(task)").first!.decode("state", as: String.self) == "error")
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(task) AND fanout_of IS NOT NULL") == 0)
        // It cannot be retried as a plain step: an operator resolves it or cancels the task.
        let id: Int64 = try await fixture.pool.query("SELECT id FROM orcastra.steps WHERE task_id = \(task) AND name = 'charge'").first!.decode("id")
        let refused = await #expect(throws: PostgresError.self) { _ = try await fixture.pool.query("SELECT orcastra.retry_step(\(id), 'operator')") }
        #expect(refused?.sqlState == "OR002")
        let violations = try await fixture.pool.withConnection { try await InvariantChecker(settleGrace: .zero).check(on: $0) }
        #expect(violations.isEmpty, "\(violations.map(\.description))")
    }

    @Test func aPathThatYieldsNoListFailsTheStep() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.template)
        let (task, _) = try await Self.split(fixture, result: #"{"orders": "none"}"#)
        let charge = try await Self.charge(fixture, task)
        #expect(try charge.decode("state", as: String.self) == "error")
        #expect(try charge.decode("last_error", as: String.self) == #"for_each $."parents"."split"."orders" yielded "none", not a JSON array"#)
    }

    /// The report that completes `split` makes 10,000 instances — rows, items and audit rows in one
    /// statement, no edge rows (migration 0019) — inside its own transaction.
    @Test func tenThousandInstancesInOneReport() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.template)
        let orders = "[" + (0..<10_000).map(String.init).joined(separator: ",") + "]"
        let (task, elapsed) = try await Self.split(fixture, result: #"{"orders": \#(orders)}"#)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(task) AND fanout_of IS NOT NULL AND state = 'enqueued'") == 10_000)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.step_items i JOIN orcastra.steps s ON s.id = i.step_id WHERE s.task_id = \(task)") == 10_000)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.step_edges") == 1)
        // Printed, not asserted: speed is a bench figure (`orcastra-bench`, docs/benchmarks.md), and
        // CI shares its cores with every other suite (6.9 s was seen there against 0.8 s alone).
        print("fan-out of 10,000 instances: the completing report took \(elapsed)")
    }

    /// Two tasks of `fan/joined` (split → charge, a fan-out over three orders → report) whose
    /// `charge` has fanned out, the first's instances given the edge rows to their group that a
    /// release before migration 0019 wrote. Returns the tasks, in order.
    static func twoFanOutsTheFirstWithOlderEdges(_ fixture: StoreFixture) async throws -> [UUID] {
        try await fixture.register(template.replacingOccurrences(of: "name: split\n", with: "name: joined\n")
            + "\n  - {name: report, depends_on: [charge], handler: fan.report}")
        var tasks: [UUID] = []
        for _ in 0..<2 {
            tasks.append(try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "fan/joined"))).taskID)
        }
        let splits = try await fixture.pool.query("SELECT step_id, lease_token FROM orcastra.claim_steps('fan', 'w', 2, 30000)")
        #expect(splits.count == 2)
        try await complete(fixture, splits, result: #"{"orders": [1, 2, 3]}"#)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.step_edges e JOIN orcastra.steps i ON i.id = e.parent_id WHERE i.fanout_of IS NOT NULL") == 0)
        try await fixture.pool.query("""
            INSERT INTO orcastra.step_edges (parent_id, child_id)
            SELECT i.id, i.fanout_of FROM orcastra.steps i WHERE i.task_id = \(tasks[0]) AND i.fanout_of IS NOT NULL
            """)
        return tasks
    }

    /// Completes the claimed steps `rows` (step_id, lease_token), each with `result`, in one report.
    static func complete(_ fixture: StoreFixture, _ rows: QueryResult, result: String = "{}") async throws {
        _ = try await fixture.pool.query("""
            SELECT * FROM orcastra.complete_steps(\(try rows.map { try $0.decode("step_id", as: Int64.self) }),
                                                  \(try rows.map { try $0.decode("lease_token", as: UUID.self) }),
                                                  array_fill(\(result)::jsonb, ARRAY[\(rows.count)::integer]))
            """)
    }

    /// A fan-out made before migration 0019 has an edge row from each instance to its group; one
    /// made since has none (the link is the instance's fanout_of, orcastra.step_links). Both kinds
    /// in flight at once, completed in one report: each instance counts down on its group exactly
    /// once, both groups complete and release their fan-in, and the invariants hold throughout.
    @Test func fanOutsWithAndWithoutInstanceEdgesCountEachInstanceOnce() async throws {
        let fixture = try await StoreFixture()
        _ = try await Self.twoFanOutsTheFirstWithOlderEdges(fixture)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.step_links e JOIN orcastra.steps i ON i.id = e.parent_id WHERE i.fanout_of IS NOT NULL") == 6)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE name = 'charge' AND pending_parents = 3 AND state = 'pending'") == 2)
        let checker = InvariantChecker(settleGrace: .zero)
        var violations = try await fixture.pool.withConnection { try await checker.check(on: $0) }
        #expect(violations.isEmpty, "\(violations.map(\.description))")

        let claimed = try await fixture.pool.query("SELECT step_id, lease_token FROM orcastra.claim_steps('fan', 'w', 10, 30000)")
        #expect(claimed.count == 6)
        try await Self.complete(fixture, claimed)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE name = 'charge' AND pending_parents = 0 AND state = 'complete'") == 2)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE name = 'report' AND state = 'enqueued'") == 2)
        violations = try await fixture.pool.withConnection { try await checker.check(on: $0) }
        #expect(violations.isEmpty, "\(violations.map(\.description))")
    }

    /// The same two forms through failure and the operator: one instance of each fan-out fails for
    /// good, so both fan-outs fail once the others completed (release_after_failures, fail_fanouts);
    /// then an operator resolves the first's failed instance and retries the second's, and both
    /// complete and release their fan-in. The invariants hold at each stage.
    @Test func fanOutsWithAndWithoutInstanceEdgesFailAndRecoverAlike() async throws {
        let fixture = try await StoreFixture()
        let tasks = try await Self.twoFanOutsTheFirstWithOlderEdges(fixture)
        let checker = InvariantChecker(settleGrace: .zero)
        func expectInvariants() async throws {
            let violations = try await fixture.pool.withConnection { try await checker.check(on: $0) }
            #expect(violations.isEmpty, "\(violations.map(\.description))")
        }

        // Instance [2] of each fails for good; the others complete, in one report.
        let claimed = try await fixture.pool.query("""
            SELECT c.step_id, c.lease_token, c.item_index FROM orcastra.claim_steps('fan', 'w', 10, 30000) AS c
            """)
        #expect(claimed.count == 6)
        let ids: [Int64] = try claimed.map { try $0.decode("step_id") }, tokens: [UUID] = try claimed.map { try $0.decode("lease_token") }
        let errors: [String?] = try claimed.map { try $0.decode("item_index", as: Int.self) == 2 ? "declined" : nil }
        _ = try await fixture.pool.query("""
            SELECT * FROM orcastra.report_steps(\(ids), \(tokens), array_fill('{}'::jsonb, ARRAY[6]), \(errors)::text[],
                                                array_fill(NULL::bigint, ARRAY[6]))
            """)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE name = 'charge' AND state = 'error' AND pending_parents = 1") == 2)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks WHERE state = 'error'") == 2)
        try await expectInvariants()

        // The operator: resolve the first's failed instance, retry the second's and complete it.
        func failed(_ task: UUID) async throws -> Int64 {
            try await fixture.pool.query("SELECT id FROM orcastra.steps WHERE task_id = \(task) AND fanout_of IS NOT NULL AND state = 'error'").first!.decode("id")
        }
        _ = try await fixture.pool.query(#"SELECT orcastra.resolve_step(\#(try await failed(tasks[0])), '{"by": "hand"}', 'operator')"#)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(tasks[0]) AND name = 'charge' AND state = 'complete' AND pending_parents = 0") == 1)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(tasks[0]) AND name = 'report' AND state = 'enqueued'") == 1)
        try await expectInvariants()
        _ = try await fixture.pool.query("SELECT orcastra.retry_step(\(try await failed(tasks[1])), 'operator')")
        // The first task's fan-in and the second's retried instance.
        let again = try await fixture.pool.query("SELECT step_id, lease_token FROM orcastra.claim_steps('fan', 'w', 10, 30000)")
        #expect(again.count == 2)
        try await Self.complete(fixture, again)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE name = 'charge' AND state = 'complete' AND pending_parents = 0") == 2)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(tasks[1]) AND name = 'report' AND state = 'enqueued'") == 1)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks WHERE id = \(tasks[0]) AND state = 'complete'") == 1)
        try await expectInvariants()
    }

    /// An instance's claim carries its item and index; the task's context and its fan-out step's
    /// parents only when `instance_input` lists them (no copy of the list per instance otherwise).
    @Test(arguments: [("", false, false), ("instance_input: [context], ", true, false),
                      ("instance_input: [parents, context], ", true, true)])
    func anInstanceGetsTheContextAndParentsOnlyWhenAsked(option: String, context: Bool, parents: Bool) async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.template.replacingOccurrences(of: "for_each:", with: "\(option)for_each:"))
        let (task, _) = try await Self.split(fixture, result: #"{"orders": ["x", "y"]}"#)
        let rows = try await fixture.pool.query("SELECT step_name, context, parents, item, item_index FROM orcastra.claim_steps('fan', 'w', 10, 30000) ORDER BY item_index")
        #expect(rows.count == 2)
        for (index, row) in rows.enumerated() {
            #expect(try row.decode("step_name", as: String.self) == "charge[\(index)]")
            #expect(try row.decode("item", as: String?.self) == (index == 0 ? #""x""# : #""y""#))
            #expect(try row.decode("item_index", as: Int?.self) == index)
            #expect(try row.decode("context", as: String?.self) == (context ? "{}" : nil))
            #expect(try row.decode("parents", as: String?.self) == (parents ? #"{"split": {"orders": ["x", "y"]}}"# : nil))
        }
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(task)") == 4)
    }
}
