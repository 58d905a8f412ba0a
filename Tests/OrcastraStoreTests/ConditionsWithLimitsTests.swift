import Foundation
import OrcastraInvariants
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

/// Issue 19's two halves together, through the protocol functions: a fan-out step with a step
/// `concurrency:` (its instances share the limit, and claims carry item, index and traceparent),
/// and a task with a concurrency key whose root `when:` is decided when a slot frees.
@Suite(.timeLimit(.minutes(3))) struct ConditionsWithLimitsTests {
    static let limitedFanOut = """
        namespace: fanlim
        name: charge
        version: 1.0.0
        steps:
          - {name: charge, for_each: "$.context.orders", handler: fanlim.charge, concurrency: 2}
        """

    static let keyedGate = """
        namespace: gate
        name: gated
        version: 1.0.0
        concurrency: {key: "$.context.k", limit: 1}
        steps:
          - {name: gate, when: "$.context.run == true", handler: gate.check}
          - {name: work, depends_on: [gate], handler: gate.work}
        """

    static func invariantsHold(_ fixture: StoreFixture) async throws {
        let violations = try await fixture.pool.withConnection { try await InvariantChecker(settleGrace: .zero).check(on: $0) }
        #expect(violations.isEmpty, "\(violations.map(\.description))")
    }

    @Test func aLimitedFanOutsInstancesShareItsSlotsAndCarryTheirItemAndTrace() async throws {
        let fixture = try await StoreFixture()
        defer { Task { await fixture.pool.shutdown() } }
        try await fixture.register(Self.limitedFanOut)
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let task = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "fanlim/charge"),
                                                                context: ["orders": ["a", "b", "c", "d", "e"]],
                                                                traceparent: traceparent)).taskID
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(task) AND fanout_of IS NOT NULL AND state = 'enqueued' AND limit_scope IS NOT NULL") == 5)
        var done = 0
        while done < 5 {
            let claimed = try await fixture.pool.query("SELECT * FROM orcastra.claim_steps('fanlim', 'test-worker', 10, 30000)")
            // Never more than the step's concurrency, although five instances are enqueued.
            #expect(claimed.count == min(2, 5 - done), "claimed \(claimed.count) after \(done) done")
            #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(task) AND state = 'in_progress'") <= 2)
            var ids: [Int64] = []
            var tokens: [UUID] = []
            for row in claimed {
                let index: Int = try #require(try row.decode("item_index", as: Int?.self))
                #expect(try row.decode("step_name", as: String.self) == "charge[\(index)]")
                #expect(try row.decode("item", as: String?.self) == "\"\(["a", "b", "c", "d", "e"][index])\"")
                #expect(try row.decode("traceparent", as: String?.self) == traceparent)
                ids.append(try row.decode("step_id"))
                tokens.append(try row.decode("lease_token"))
            }
            guard !ids.isEmpty else { break }
            let idList = ids.map(String.init).joined(separator: ",")
            let tokenList = tokens.map { "'\($0.uuidString)'" }.joined(separator: ",")
            let results = ids.map { _ in "'1'::jsonb" }.joined(separator: ",")
            _ = try await fixture.pool.query(SQL(unsafeRaw: "SELECT * FROM orcastra.complete_steps(ARRAY[\(idList)]::bigint[], ARRAY[\(tokenList)]::uuid[], ARRAY[\(results)])"))
            done += ids.count
        }
        #expect(done == 5)
        #expect(try await fixture.pool.query("SELECT state FROM orcastra.tasks WHERE id = \(task)").first!.decode("state", as: String.self) == "complete")
        try await Self.invariantsHold(fixture)

        // Retention counts, archives and deletes the instances' items with the rest of the task.
        let (owned, deleted, archived) = try await fixture.pool.withTransaction { connection in
            let owned = try await connection.query("""
                SELECT owned_rows FROM orcastra.lock_tasks_for_pruning(ARRAY[\(task)]::uuid[],
                    ARRAY[(SELECT finished_at FROM orcastra.tasks WHERE id = \(task))], 10000)
                """).first!.decode("owned_rows", as: Int.self)
            let archive = try await connection.query("SELECT * FROM orcastra.archive_tasks(ARRAY[\(task)]::uuid[])").first!.decode(at: 0, as: String.self)
            let deleted = try await connection.query("SELECT deleted_rows FROM orcastra.delete_tasks(ARRAY[\(task)]::uuid[])").first!.decode("deleted_rows", as: Int.self)
            return (owned, deleted, archive)
        }
        #expect(owned == deleted)
        #expect(archived.contains(#""item": "e""#), "\(archived.prefix(400))")
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.step_items") == 0)
    }

    @Test func aWaitingTasksRootConditionIsDecidedWhenItsSlotFrees() async throws {
        let fixture = try await StoreFixture()
        defer { Task { await fixture.pool.shutdown() } }
        try await fixture.register(Self.keyedGate)
        let reference = try TemplateReference(parsing: "gate/gated")
        let first = try await fixture.creator.create(TaskRequest(template: reference, context: ["k": "a", "run": true])).taskID
        let second = try await fixture.creator.create(TaskRequest(template: reference, context: ["k": "a", "run": false])).taskID
        let third = try await fixture.creator.create(TaskRequest(template: reference, context: ["k": "a", "run": true])).taskID
        func state(_ task: UUID) async throws -> String {
            try await fixture.pool.query("SELECT state FROM orcastra.tasks WHERE id = \(task)").first!.decode("state", as: String.self)
        }
        #expect(try await state(first) == "in_progress")
        #expect(try await state(second) == "pending")
        #expect(try await state(third) == "pending")

        // Run the first task's two steps.
        for _ in 0..<2 {
            let row = try #require(try await fixture.pool.query("SELECT * FROM orcastra.claim_steps('gate', 'test-worker', 1, 30000)").first)
            let id: Int64 = try row.decode("step_id")
            let token: UUID = try row.decode("lease_token")
            #expect(try row.decode("task_id", as: UUID.self) == first)
            _ = try await fixture.pool.query("SELECT * FROM orcastra.complete_steps(ARRAY[\(id)]::bigint[], ARRAY[\(token)]::uuid[], ARRAY['{}'::jsonb])")
        }
        // Its slot went to the second, whose gate is not true: skipped, work skipped after it, the
        // task complete at once — and the slot passed on to the third in that same transaction.
        #expect(try await state(first) == "complete")
        #expect(try await state(second) == "complete")
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(second) AND state = 'skipped'") == 2)
        #expect(try await state(third) == "in_progress")
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(third) AND name = 'gate' AND state = 'enqueued'") == 1)
        try await Self.invariantsHold(fixture)
    }
}
