import Foundation
import OrcastraPostgres
import OrcastraStateMachines
import OrcastraStore
import OrcastraTemplates
import Testing

/// SQL is the source of the two state machines (Migrations/0001_core_schema.sql, functions/audit.sql):
/// the Swift tables must equal the database's exactly, and the database enforces and audits them.
@Suite(.timeLimit(.minutes(5))) struct StateMachineDatabaseTests {
    /// The legal pairs in `table`, as "from→to", with duplicates kept so a count mismatch shows.
    static func pairs(_ pool: PostgresPool, _ table: String) async throws -> [String] {
        try await pool.query("SELECT from_state || '→' || to_state AS pair FROM orcastra.\(ident: table) ORDER BY 1")
            .rows.map { try $0.decode("pair", as: String.self) }
    }

    /// The states the `CHECK` constraint on `table.state` allows.
    static func checkedStates(_ pool: PostgresPool, _ table: String) async throws -> Set<String> {
        let rows = try await pool.query("""
            SELECT (regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''::text', 'g'))[1] AS state
            FROM pg_constraint c
            WHERE c.conrelid = ('orcastra.' || \(table))::regclass AND c.contype = 'c'
              AND pg_get_constraintdef(c.oid) LIKE '%state%'
            """)
        return Set(try rows.rows.map { try $0.decode("state", as: String.self) })
    }

    static func swiftPairs<S: StateMachineState>(_ machine: S.Type) -> [String] {
        S.legalPairs.map { "\($0.from.rawValue)→\($0.to.rawValue)" }.sorted()
    }

    /// Both directions: every SQL pair is in Swift and every Swift pair in SQL, no duplicates; the
    /// same states as the CHECK constraints; and a state is final in Swift exactly when SQL has no
    /// move out of it.
    @Test func swiftMachinesEqualTheDatabase() async throws {
        let fixture = try await StoreFixture()
        let taskPairs = try await Self.pairs(fixture.pool, "task_state_transitions_allowed")
        let stepPairs = try await Self.pairs(fixture.pool, "step_state_transitions_allowed")
        #expect(taskPairs == Self.swiftPairs(TaskState.self))
        #expect(stepPairs == Self.swiftPairs(StepState.self))
        #expect(Set(taskPairs).count == taskPairs.count && Set(stepPairs).count == stepPairs.count)

        #expect(try await Self.checkedStates(fixture.pool, "tasks") == Set(TaskState.allCases.map(\.rawValue)))
        #expect(try await Self.checkedStates(fixture.pool, "steps") == Set(StepState.allCases.map(\.rawValue)))

        let taskSources = Set(taskPairs.map { String($0.split(separator: "→")[0]) })
        for state in TaskState.allCases {
            #expect(state.isTerminal == !taskSources.contains(state.rawValue), "task state \(state.rawValue)")
        }
        let stepSources = Set(stepPairs.map { String($0.split(separator: "→")[0]) })
        for state in StepState.allCases {
            #expect(state.isTerminal == !stepSources.contains(state.rawValue), "step state \(state.rawValue)")
        }
        await fixture.pool.shutdown()
    }

    /// The trigger functions the database runs are the ones from the repeatable file audit.sql.
    @Test func auditFunctionsComeFromTheRepeatableFile() async throws {
        let fixture = try await StoreFixture()
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.schema_repeatables WHERE file = 'functions/audit.sql'") == 1)
        let source = try await fixture.pool.query("SELECT prosrc FROM pg_proc WHERE oid = 'orcastra.audit_task_transition()'::regprocedure")
            .first!.decode("prosrc", as: String.self)
        let file = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Migrations/functions/audit.sql"), encoding: .utf8)
        #expect(file.contains(source))
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
        #expect(error?.sqlState == OrcastraSQLState.illegalTransition.rawValue)
        #expect("\(error.map { "\($0)" } ?? "")".contains("illegal step transition from pending to complete"))
        // A state outside the machine is refused too (the trigger fires before the CHECK constraint).
        let unknown = await #expect(throws: PostgresError.self) {
            try await fixture.pool.query("UPDATE orcastra.steps SET state = 'exploded' WHERE task_id = \(task) AND name = 'join'")
        }
        #expect(unknown?.sqlState == OrcastraSQLState.illegalTransition.rawValue)
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
        #expect(error?.sqlState == OrcastraSQLState.illegalTransition.rawValue)
        let log = try await fixture.pool.query("SELECT coalesce(from_state, '-') || '→' || to_state || ' ' || reason AS line FROM orcastra.task_transitions WHERE task_id = \(task) ORDER BY id")
            .rows.map { try $0.decode("line", as: String.self) }
        #expect(log == ["-→in_progress created", "in_progress→cancelled operator"])
        await fixture.pool.shutdown()
    }
}
