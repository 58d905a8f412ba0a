import Foundation
import OrcastraInvariants
import OrcastraPostgres
import OrcastraStateMachines
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

/// The history (task and step transitions) partitioned by its task's creation week (migration
/// 0014, functions/history_partitions.sql; docs/retention.md, "Partitioned history").
@Suite(.timeLimit(.minutes(3))) struct HistoryPartitionTests {
    static let pair = """
        namespace: shop
        name: pair
        version: 1.0.0
        steps:
          - {name: first, handler: shop.first}
          - {name: second, handler: shop.second, depends_on: [first]}
        """

    /// A task of shop/pair created `days` ago (written directly, as the bench loads history), with
    /// its creation rows keyed to that time, then its first step moved through the audit trigger.
    func taskCreated(daysAgo days: Int, _ fixture: StoreFixture) async throws -> UUID {
        let row = try await fixture.pool.query("""
            WITH t AS (
                INSERT INTO orcastra.tasks (template_id, state, state_reason, context, created_at, started_at)
                SELECT id, 'in_progress', 'created', '{}'::jsonb, now() - \(days) * interval '1 day', now() - \(days) * interval '1 day'
                FROM orcastra.templates WHERE namespace = 'shop' AND name = 'pair'
                RETURNING id, created_at
            ), s AS (
                INSERT INTO orcastra.steps (task_id, name, namespace, state, state_reason, max_attempts, pending_parents, enqueued_at)
                SELECT t.id, n.name, 'shop', n.state, 'created', 1, n.parents, CASE WHEN n.state = 'enqueued' THEN now() END
                FROM t CROSS JOIN (VALUES ('first', 'enqueued', 0), ('second', 'pending', 1)) AS n(name, state, parents)
                RETURNING id, task_id, state
            ), tt AS (
                INSERT INTO orcastra.task_transitions (task_id, from_state, to_state, reason, task_created_at)
                SELECT t.id, NULL, 'in_progress', 'created', t.created_at FROM t
            ), st AS (
                INSERT INTO orcastra.step_transitions (step_id, task_id, from_state, to_state, attempt, reason, task_created_at)
                SELECT s.id, s.task_id, NULL, s.state, 0, 'created', t.created_at FROM s JOIN t ON t.id = s.task_id
            )
            INSERT INTO orcastra.step_edges (parent_id, child_id)
            SELECT a.id, b.id FROM s a JOIN s b ON b.task_id = a.task_id AND b.state = 'pending' WHERE a.state = 'enqueued'
            RETURNING (SELECT id FROM t) AS id
            """).first
        let task = try #require(try row?.decode("id", as: UUID.self))
        // Through the trigger: claimed, so the step's history has a row written after creation.
        _ = try await fixture.pool.query("""
            UPDATE orcastra.steps SET state = 'in_progress', state_reason = 'claimed', attempts = 1, lease_token = gen_random_uuid(),
                   lease_owner = 'test', lease_expires_at = now() + interval '1 minute', started_at = now()
            WHERE task_id = \(task) AND name = 'first'
            """)
        return task
    }

    /// Which table each of the task's history rows is stored in.
    func partitions(of task: UUID, _ fixture: StoreFixture) async throws -> Set<String> {
        Set(try await fixture.pool.query("""
            SELECT tableoid::regclass::text AS t FROM orcastra.task_transitions WHERE task_id = \(task)
            UNION SELECT tableoid::regclass::text FROM orcastra.step_transitions WHERE task_id = \(task)
            """).rows.map { try $0.decode("t", as: String.self) })
    }

    func maintain(_ fixture: StoreFixture, weeksAhead: Int = 4) async throws -> (created: Int, moved: Int, dropped: Int, bytes: Int, skipped: Bool) {
        let row = try #require(try await fixture.pool.query(
            "SELECT * FROM orcastra.maintain_history_partitions(\(weeksAhead)::int)").first)
        return (try row.decode("created", as: Int.self), try row.decode("moved_rows", as: Int.self), try row.decode("dropped", as: Int.self),
                try row.decode("dropped_bytes", as: Int.self), try row.decode("skipped", as: Bool.self))
    }

    func week(daysAgo days: Int, _ fixture: StoreFixture) async throws -> String {
        try await fixture.pool.query(
            "SELECT to_char(orcastra.history_week(now() - \(days) * interval '1 day') AT TIME ZONE 'UTC', 'YYYYMMDD') AS w"
        ).first!.decode("w", as: String.self)
    }

    func historyViolations(_ fixture: StoreFixture) async throws -> [InvariantViolation] {
        let connection = try await PostgresConnection.connect(fixture.pool.conninfo)
        defer { Task { await connection.close() } }
        return try await InvariantChecker().check(on: connection).filter { $0.invariant == "history-owned-and-keyed" }
    }

    @Test func aTaskCreatedNowKeepsItsWholeHistoryInThisWeeksPartition() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.pair)
        let creation = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "shop/pair"), context: [:]))
        let task = creation.taskID
        _ = try await fixture.pool.query("UPDATE orcastra.steps SET state = 'cancelled', state_reason = 'test' WHERE task_id = \(task)")
        _ = try await fixture.pool.query("UPDATE orcastra.tasks SET state = 'cancelled', state_reason = 'test' WHERE id = \(task)")
        let thisWeek = try await week(daysAgo: 0, fixture)
        #expect(try await partitions(of: task, fixture) == ["orcastra.task_transitions_p\(thisWeek)", "orcastra.step_transitions_p\(thisWeek)"])
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.task_transitions WHERE task_id = \(task)") == 2)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.step_transitions WHERE task_id = \(task)") == 4)
        #expect(try await historyViolations(fixture).isEmpty)
    }

    @Test func aWeekWithoutPartitionWaitsInTheDefaultAndMovesOutWhenMaintained() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.pair)
        // The database was migrated after this week ended: no partition for it yet.
        let old = try await taskCreated(daysAgo: 30, fixture)
        #expect(try await partitions(of: old, fixture) == ["orcastra.task_transitions_default", "orcastra.step_transitions_default"])
        let outcome = try await maintain(fixture)
        #expect(outcome.created == 2 && outcome.moved == 4 && !outcome.skipped, "\(outcome)")
        let week = try await week(daysAgo: 30, fixture)
        #expect(try await partitions(of: old, fixture) == ["orcastra.task_transitions_p\(week)", "orcastra.step_transitions_p\(week)"])
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.step_transitions_default") == 0)
        // Later moves of that task go straight to its week.
        _ = try await fixture.pool.query("UPDATE orcastra.steps SET state = 'cancelled', state_reason = 'test', lease_token = NULL WHERE task_id = \(old)")
        #expect(try await partitions(of: old, fixture) == ["orcastra.task_transitions_p\(week)", "orcastra.step_transitions_p\(week)"])
        #expect(try await maintain(fixture).created == 0)
        #expect(try await historyViolations(fixture).isEmpty)
    }

    @Test func aWeekIsDroppedWholeOnlyOnceNoTaskOfItIsLeft() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.pair)
        let first = try await taskCreated(daysAgo: 30, fixture)
        let second = try await taskCreated(daysAgo: 30, fixture)
        let current = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "shop/pair"), context: [:])).taskID
        _ = try await maintain(fixture)
        let week = try await week(daysAgo: 30, fixture)

        _ = try await fixture.pool.query("SELECT * FROM orcastra.delete_tasks(ARRAY[\(first)]::uuid[])")
        // The deleted task's history stays (nobody reads it) while a task of its week is left.
        let kept = try await maintain(fixture)
        #expect(kept.dropped == 0, "\(kept)")
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.step_transitions WHERE task_id = \(first)") == 3)
        #expect(try await historyViolations(fixture).isEmpty)

        _ = try await fixture.pool.query("SELECT * FROM orcastra.delete_tasks(ARRAY[\(second)]::uuid[])")
        let dropped = try await maintain(fixture)
        #expect(dropped.dropped == 2 && dropped.bytes > 0, "\(dropped)")
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.history_partitions WHERE table_name LIKE '%' || \(week)") == 0)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.step_transitions WHERE task_id IN (\(first), \(second))") == 0)
        // This week's partitions and their rows are untouched.
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.step_transitions WHERE task_id = \(current)") == 2)
        #expect(try await maintain(fixture).dropped == 0)
    }

    @Test func partitionsAheadAreMadeOnceWhateverNumberOfCallersRace() async throws {
        let fixture = try await StoreFixture()
        // The migration made this week and four ahead; eight ahead asks for four more per table.
        let callers = 6
        let outcomes = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for _ in 0..<callers {
                group.addTask {
                    let outcome = try await maintain(fixture, weeksAhead: 8)
                    return (outcome.created, outcome.skipped)
                }
            }
            return try await group.reduce(into: [(Int, Bool)]()) { $0.append($1) }
        }
        // Whoever got the lock made them; a caller that found it taken returned at once; a later
        // one found them made.
        #expect(outcomes.map(\.0).reduce(0, +) == 8, "\(outcomes)")
        #expect(outcomes.filter { !$0.1 && $0.0 > 0 }.count == 1, "\(outcomes)")
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.history_partitions WHERE week IS NOT NULL") == 2 * 9)
        #expect(try await maintain(fixture, weeksAhead: 8).created == 0)
    }

    @Test func historyInTheWrongWeekIsReportedByTheChecker() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.pair)
        let task = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "shop/pair"), context: [:])).taskID
        // A writer that forgot the key: the row lands in a later week than its task's.
        _ = try await fixture.pool.query("""
            UPDATE orcastra.step_transitions SET task_created_at = task_created_at + interval '8 days'
            WHERE task_id = \(task) AND from_state IS NULL AND step_id = (SELECT min(step_id) FROM orcastra.step_transitions WHERE task_id = \(task))
            """)
        let violations = try await historyViolations(fixture)
        #expect(violations.count == 1, "\(violations)")
        #expect(violations.first?.taskID == task)
        #expect(violations.first?.message.contains("wrong week's partition") == true, "\(violations)")
    }

    @Test(arguments: [
        ("SELECT orcastra.create_history_partition('tasks', orcastra.history_week(now()))", "tasks is not a history table"),
        ("SELECT orcastra.create_history_partition('task_transitions', orcastra.history_week(now()) + interval '1 day')", "is not the start of a week"),
        ("SELECT * FROM orcastra.maintain_history_partitions(-1)", "p_weeks_ahead must be between 0 and 520"),
    ])
    func badArgumentsAreRefusedWithTheirCode(sql: String, message: String) async throws {
        let fixture = try await StoreFixture()
        let error = await #expect(throws: PostgresError.self) { try await fixture.pool.query(SQL(unsafeRaw: sql)) }
        #expect(error?.sqlState == OrcastraSQLState.historyPartitionArgument.rawValue)
        #expect("\(error.map { "\($0)" } ?? "")".contains(message), "\(String(describing: error))")
    }
}
