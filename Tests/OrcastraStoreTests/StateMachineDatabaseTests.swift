import Foundation
import OrcastraPostgres
import OrcastraStateMachines
import OrcastraStore
import OrcastraTemplates
import Testing

/// The database's copy of the transition tables matches Swift's, and it enforces and audits them.
@Suite(.timeLimit(.minutes(5))) struct StateMachineDatabaseTests {
    @Test func databaseTablesMatchTheSwiftMachines() async throws {
        let fixture = try await StoreFixture()
        let taskPairs = try await fixture.pool.query("SELECT from_state || '→' || to_state AS pair FROM orcastra.task_state_transitions_allowed")
            .rows.map { try $0.decode("pair", as: String.self) }
        let stepPairs = try await fixture.pool.query("SELECT from_state || '→' || to_state AS pair FROM orcastra.step_state_transitions_allowed")
            .rows.map { try $0.decode("pair", as: String.self) }
        #expect(Set(taskPairs) == Set(TaskState.legalPairs.map { "\($0.from.rawValue)→\($0.to.rawValue)" }))
        #expect(Set(stepPairs) == Set(StepState.legalPairs.map { "\($0.from.rawValue)→\($0.to.rawValue)" }))
        await fixture.pool.shutdown()
    }

    @Test func illegalStepTransitionIsRefusedAndLegalOneAudited() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.diamond)
        let task = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "shop/diamond"), context: ["order_id": 1])).taskID
        // pending → complete skips the queue: refused.
        let error = await #expect(throws: PostgresError.self) {
            try await fixture.pool.query("UPDATE orcastra.steps SET state = 'complete' WHERE task_id = \(task) AND name = 'join'")
        }
        #expect(error?.sqlState == "OR001")
        #expect("\(error.map { "\($0)" } ?? "")".contains("illegal step transition from pending to complete"))
        // A state outside the machine is refused too (the trigger fires before the CHECK constraint).
        let unknown = await #expect(throws: PostgresError.self) {
            try await fixture.pool.query("UPDATE orcastra.steps SET state = 'exploded' WHERE task_id = \(task) AND name = 'join'")
        }
        #expect(unknown?.sqlState == "OR001")
        // enqueued → in_progress is legal and leaves a transition row with its reason.
        try await fixture.pool.query("""
            UPDATE orcastra.steps SET state = 'in_progress', state_reason = 'claimed', attempts = 1, lease_owner = 'worker-1'
            WHERE task_id = \(task) AND name = 'start'
            """)
        let audit = try await fixture.pool.query("""
            SELECT from_state, to_state, reason, attempt, metadata->>'worker' AS worker FROM orcastra.step_transitions t
            JOIN orcastra.steps s ON s.id = t.step_id WHERE s.task_id = \(task) AND s.name = 'start' ORDER BY t.id
            """).rows
        #expect(audit.count == 2)
        #expect(try audit[1].decode("from_state", as: String.self) == "enqueued")
        #expect(try audit[1].decode("to_state", as: String.self) == "in_progress")
        #expect(try audit[1].decode("reason", as: String.self) == "claimed")
        #expect(try audit[1].decode("attempt", as: Int.self) == 1)
        #expect(try audit[1].decode("worker", as: String.self) == "worker-1")
        await fixture.pool.shutdown()
    }

    @Test func illegalTaskTransitionIsRefused() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.diamond)
        let task = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "shop/diamond"), context: ["order_id": 1])).taskID
        try await fixture.pool.query("UPDATE orcastra.tasks SET state = 'cancelled', state_reason = 'operator' WHERE id = \(task)")
        let error = await #expect(throws: PostgresError.self) {
            try await fixture.pool.query("UPDATE orcastra.tasks SET state = 'in_progress' WHERE id = \(task)")
        }
        #expect(error?.sqlState == "OR001")
        let log = try await fixture.pool.query("SELECT coalesce(from_state, '-') || '→' || to_state || ' ' || reason AS line FROM orcastra.task_transitions WHERE task_id = \(task) ORDER BY id")
            .rows.map { try $0.decode("line", as: String.self) }
        #expect(log == ["-→in_progress created", "in_progress→cancelled operator"])
        await fixture.pool.shutdown()
    }
}
