import Foundation
import OrcastraInvariants
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

/// Trigger rules after a parent that fails in the database rather than in a worker (issue 19): a
/// fan-out whose instance failed for good, a fan-out whose list could not be made, a workflow step
/// whose child task failed. `trigger: all_done` children run; `none_failed` ones wait, as after any
/// failed parent. Also `create_tasks` (the schedules' bulk creation) refusing a missing `workflow:`.
@Suite(.timeLimit(.minutes(3))) struct FailedParentTriggerTests {
    static let fan = """
        namespace: ff
        name: fan
        version: 1.0.0
        steps:
          - {name: split, handler: ff.split}
          - {name: charge, depends_on: [split], for_each: "$.parents.split.orders", handler: ff.charge, retry: {max_attempts: 1}}
          - {name: always, depends_on: [charge], trigger: all_done, handler: ff.always}
          - {name: clean, depends_on: [charge], trigger: none_failed, handler: ff.clean}
        """

    /// Claims every claimable step of namespace ff: name → (id, lease token).
    static func claim(_ fixture: StoreFixture) async throws -> [String: (Int64, UUID)] {
        var claimed: [String: (Int64, UUID)] = [:]
        for row in try await fixture.pool.query("SELECT step_name, step_id, lease_token FROM orcastra.claim_steps('ff', 'w', 100, 60000)") {
            claimed[try row.decode("step_name")] = (try row.decode("step_id"), try row.decode("lease_token"))
        }
        return claimed
    }

    static func complete(_ fixture: StoreFixture, _ lease: (Int64, UUID), result: String = "{}") async throws {
        _ = try await fixture.pool.query("SELECT * FROM orcastra.complete_steps(ARRAY[\(lease.0)]::bigint[], ARRAY[\(lease.1)]::uuid[], ARRAY[\(result)::jsonb])")
    }

    static func fail(_ fixture: StoreFixture, _ lease: (Int64, UUID), error: String) async throws {
        _ = try await fixture.pool.query("SELECT * FROM orcastra.fail_steps(ARRAY[\(lease.0)]::bigint[], ARRAY[\(lease.1)]::uuid[], ARRAY[\(error)::text], ARRAY[NULL::bigint])")
    }

    static func states(_ fixture: StoreFixture, _ task: UUID) async throws -> [String: String] {
        var states: [String: String] = [:]
        for row in try await fixture.pool.query("SELECT name, state FROM orcastra.steps WHERE task_id = \(task)") {
            states[try row.decode("name")] = try row.decode("state")
        }
        return states
    }

    static func field(_ fixture: StoreFixture, _ sql: SQL) async throws -> String? {
        try await fixture.pool.query(sql).first!.decode(at: 0, as: String?.self)
    }

    static func expectInvariants(_ fixture: StoreFixture) async throws {
        let violations = try await fixture.pool.withConnection { try await InvariantChecker(settleGrace: .zero).check(on: $0) }
        #expect(violations.isEmpty, "\(violations.map(\.description))")
    }

    /// Starts a task of ff/fan and completes `split` with `orders`.
    static func split(_ fixture: StoreFixture, orders: String) async throws -> UUID {
        let task = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "ff/fan"))).taskID
        let claimed = try await claim(fixture)
        try await complete(fixture, try #require(claimed["split"]), result: #"{"orders": \#(orders)}"#)
        return task
    }

    /// The failed instance first, the others after: the fan-out fails when its last instance
    /// finishes; `always` (all_done) runs, `clean` (none_failed) waits. A retry of the failed
    /// instance makes the fan-out carry on and complete, and `clean` runs then.
    @Test(arguments: [true, false]) func aFanOutWithAFailedInstanceFailsOnceNothingIsLeftToRun(failFirst: Bool) async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.fan)
        let task = try await Self.split(fixture, orders: "[10, 11, 12]")
        let instances = try await Self.claim(fixture)
        #expect(instances.keys.sorted() == ["charge[0]", "charge[1]", "charge[2]"])
        if failFirst {
            try await Self.fail(fixture, instances["charge[1]"]!, error: "declined")
            #expect(try await Self.states(fixture, task)["charge"] == "pending")
            try await Self.complete(fixture, instances["charge[0]"]!)
            #expect(try await Self.states(fixture, task)["charge"] == "pending")
            try await Self.complete(fixture, instances["charge[2]"]!)
        } else {
            try await Self.complete(fixture, instances["charge[0]"]!)
            try await Self.complete(fixture, instances["charge[2]"]!)
            try await Self.fail(fixture, instances["charge[1]"]!, error: "declined")
        }
        var states = try await Self.states(fixture, task)
        #expect(states["charge"] == "error")
        #expect(states["always"] == "enqueued")
        #expect(states["clean"] == "pending")
        #expect(try await Self.field(fixture, "SELECT last_error FROM orcastra.steps WHERE task_id = \(task) AND name = 'charge'")
            == "1 of 3 instances failed for good; the first, charge[1]: declined")
        try await Self.expectInvariants(fixture)

        // The fan-out itself cannot be retried: its instances are.
        let chargeID: Int64 = try await fixture.pool.query("SELECT id FROM orcastra.steps WHERE task_id = \(task) AND name = 'charge'").first!.decode("id")
        let refused = await #expect(throws: PostgresError.self) { _ = try await fixture.pool.query("SELECT orcastra.retry_step(\(chargeID), 'again')") }
        #expect(refused?.sqlState == "OR002")

        try await Self.complete(fixture, try #require(try await Self.claim(fixture)["always"]))
        #expect(try await Self.field(fixture, "SELECT state FROM orcastra.tasks WHERE id = \(task)") == "error")
        try await Self.expectInvariants(fixture)

        // Retrying the failed instance reopens the fan-out; its completion completes it.
        let failedID = instances["charge[1]"]!.0
        #expect(try await Self.field(fixture, "SELECT orcastra.retry_step(\(failedID), 'operator')") == "enqueued")
        #expect(try await Self.states(fixture, task)["charge"] == "pending")
        #expect(try await Self.field(fixture, "SELECT state FROM orcastra.tasks WHERE id = \(task)") == "in_progress")
        try await Self.expectInvariants(fixture)
        try await Self.complete(fixture, try #require(try await Self.claim(fixture)["charge[1]"]))
        states = try await Self.states(fixture, task)
        #expect(states["charge"] == "complete")
        #expect(states["clean"] == "enqueued")
        try await Self.complete(fixture, try #require(try await Self.claim(fixture)["clean"]))
        #expect(try await Self.field(fixture, "SELECT state FROM orcastra.tasks WHERE id = \(task)") == "complete")
        try await Self.expectInvariants(fixture)
    }

    /// A fan-out whose for_each yields no list fails in the transaction that would fan it out;
    /// its all_done child runs.
    @Test func aFanOutWhoseListCannotBeMadeReleasesItsAllDoneChild() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.fan)
        let task = try await Self.split(fixture, orders: #""none""#)
        let states = try await Self.states(fixture, task)
        #expect(states["charge"] == "error")
        #expect(states["always"] == "enqueued")
        #expect(states["clean"] == "pending")
        try await Self.expectInvariants(fixture)
    }

    /// A workflow step whose child task failed: the orchestrator's chore fails the step, and its
    /// all_done child runs.
    @Test func aFailedWorkflowStepReleasesItsAllDoneChild() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register("""
            namespace: kid
            name: child
            version: 1.0.0
            steps:
              - {name: a, handler: kid.a, retry: {max_attempts: 1}}
            """)
        try await fixture.register("""
            namespace: ff
            name: parent
            version: 1.0.0
            steps:
              - {name: sub, workflow: kid/child@1.0.0}
              - {name: always, depends_on: [sub], trigger: all_done, handler: ff.always}
              - {name: clean, depends_on: [sub], trigger: none_failed, handler: ff.clean}
            """)
        let task = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "ff/parent"))).taskID
        let child = try await fixture.pool.query("SELECT c.step_id, c.lease_token FROM orcastra.claim_steps('kid', 'w', 1, 60000) c").first!
        try await Self.fail(fixture, (try child.decode("step_id"), try child.decode("lease_token")), error: "boom")
        #expect(try await fixture.count("SELECT orcastra.advance_subworkflows(10)") == 1)
        let states = try await Self.states(fixture, task)
        #expect(states["sub"] == "error")
        #expect(states["always"] == "enqueued")
        #expect(states["clean"] == "pending")
        try await Self.expectInvariants(fixture)
    }

    /// create_tasks refuses, as create_task does, a template whose workflow: step calls a
    /// template that is not registered; nothing is written.
    @Test func createTasksRefusesAMissingWorkflowTemplate() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.fan)
        try await fixture.register("""
            namespace: ff
            name: lost
            version: 1.0.0
            steps:
              - {name: first, handler: ff.first}
              - {name: refund, depends_on: [first], workflow: billing/refunds@1.2.0}
            """)
        let fan: Int64 = try await fixture.pool.query("SELECT id FROM orcastra.templates WHERE name = 'fan'").first!.decode("id")
        let lost: Int64 = try await fixture.pool.query("SELECT id FROM orcastra.templates WHERE name = 'lost'").first!.decode("id")
        let refused = await #expect(throws: PostgresError.self) {
            _ = try await fixture.pool.query("""
                SELECT * FROM orcastra.create_tasks(ARRAY[\(fan), \(lost)]::bigint[], ARRAY[NULL, NULL]::jsonb[],
                                                    ARRAY[NULL, NULL]::text[], ARRAY[NULL, NULL]::integer[])
                """)
        }
        #expect(refused?.sqlState == "OR017")
        #expect("\(refused.map { "\($0)" } ?? "")".contains("ff/lost@1.0.0 cannot run: step refund calls billing/refunds@1.2.0 — no such template is registered"))
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks") == 0)
    }
}
