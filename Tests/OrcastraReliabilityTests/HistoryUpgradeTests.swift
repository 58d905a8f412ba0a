import Foundation
import OrcastraInvariants
import OrcastraMigrations
import OrcastraPostgres
import OrcastraTesting
import Testing

/// Migration 0014 turns the history of an existing database into weekly partitions in place: every
/// row kept with its task's creation week as key, ids going on, no foreign keys left, and the live
/// task's next move landing in its own week (docs/retention.md, "Partitioned history").
@Suite(.timeLimit(.minutes(3))) struct HistoryUpgradeTests {
    /// Finished, live and new tasks written on the schema before 0014, their later moves made
    /// through that schema's audit triggers.
    static let data = """
        INSERT INTO orcastra.templates (namespace, name, version, definition, source, content_hash, step_count)
        VALUES ('shop', 'pair', '1.0.0', '{"steps": [{"name": "first", "namespace": "shop", "depends_on": [], "retry": {"max_attempts": 1}},
                {"name": "second", "namespace": "shop", "depends_on": ["first"], "retry": {"max_attempts": 1}}]}', '', 'x', 2);
        WITH t AS (
            INSERT INTO orcastra.tasks (template_id, state, state_reason, context, created_at, started_at)
            SELECT (SELECT id FROM orcastra.templates), 'in_progress', 'created', jsonb_build_object('age', d), now() - d * interval '1 day',
                   now() - d * interval '1 day'
            FROM unnest(ARRAY[20, 20, 20, 10, 0]) AS d RETURNING id, created_at
        ), s AS (
            INSERT INTO orcastra.steps (task_id, name, namespace, state, state_reason, max_attempts, pending_parents, enqueued_at)
            SELECT t.id, n.name, 'shop', n.state, 'created', 1, n.parents, CASE WHEN n.parents = 0 THEN now() END
            FROM t CROSS JOIN (VALUES ('first', 'enqueued', 0), ('second', 'pending', 1)) AS n(name, state, parents)
            RETURNING id, task_id, name, state
        ), tt AS (
            INSERT INTO orcastra.task_transitions (task_id, from_state, to_state, reason, created_at) SELECT t.id, NULL, 'in_progress', 'created', t.created_at FROM t
        ), st AS (
            INSERT INTO orcastra.step_transitions (step_id, task_id, from_state, to_state, attempt, reason) SELECT s.id, s.task_id, NULL, s.state, 0, 'created' FROM s
        )
        INSERT INTO orcastra.step_edges (parent_id, child_id)
        SELECT a.id, b.id FROM s a JOIN s b ON b.task_id = a.task_id AND b.name = 'second' WHERE a.name = 'first';
        -- Every task's first step claimed; the three oldest tasks run to the end.
        UPDATE orcastra.steps SET state = 'in_progress', state_reason = 'claimed', attempts = 1, lease_token = gen_random_uuid(),
               lease_owner = 'old-worker', lease_expires_at = now() + interval '1 hour' WHERE name = 'first';
        UPDATE orcastra.steps s SET state = 'complete', state_reason = 'done', lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL
        FROM orcastra.tasks t WHERE t.id = s.task_id AND t.created_at < now() - interval '15 days' AND s.name = 'first';
        UPDATE orcastra.steps s SET state = 'enqueued', state_reason = 'parents complete', pending_parents = 0
        FROM orcastra.tasks t WHERE t.id = s.task_id AND t.created_at < now() - interval '15 days' AND s.name = 'second';
        UPDATE orcastra.steps s SET state = 'in_progress', state_reason = 'claimed', attempts = 1
        FROM orcastra.tasks t WHERE t.id = s.task_id AND t.created_at < now() - interval '15 days' AND s.name = 'second';
        UPDATE orcastra.steps s SET state = 'complete', state_reason = 'done'
        FROM orcastra.tasks t WHERE t.id = s.task_id AND t.created_at < now() - interval '15 days' AND s.name = 'second';
        INSERT INTO orcastra.step_results (step_id, result) SELECT id, '{}' FROM orcastra.steps WHERE state = 'complete';
        UPDATE orcastra.tasks SET state = 'complete', state_reason = 'all steps complete', finished_at = now()
        WHERE created_at < now() - interval '15 days';
        """

    /// The history's rows, in a form that ignores where they are stored.
    static let fingerprint: SQL = """
        SELECT (SELECT count(*) FROM orcastra.task_transitions) AS task_rows, (SELECT count(*) FROM orcastra.step_transitions) AS step_rows,
               (SELECT md5(string_agg(concat_ws('|', id, task_id, from_state, to_state, reason, created_at), ',' ORDER BY id)) FROM orcastra.task_transitions) AS tasks,
               (SELECT md5(string_agg(concat_ws('|', id, step_id, task_id, from_state, to_state, attempt, reason, metadata, created_at), ',' ORDER BY id))
                FROM orcastra.step_transitions) AS steps,
               (SELECT max(id) FROM orcastra.step_transitions) AS last_step_row
        """

    @Test func existingHistoryIsPartitionedInPlaceAndKeepsWorking() async throws {
        let connection = try await PostgresConnection.connect(try await TestDatabases.shared.makeEmptyDatabase())
        defer { Task { await connection.close() } }
        let bundled = try Migrator.bundled()
        try await Migrator(migrations: bundled.migrations.filter { $0.version < 14 }).migrate(on: connection)
        try await connection.executeSimple(Self.data)
        let before = try await connection.queryRow(Self.fingerprint)
        #expect(try before.decode("task_rows", as: Int.self) == 8)
        #expect(try before.decode("step_rows", as: Int.self) == 10 + 5 + 12)

        try await bundled.migrate(on: connection)

        let after = try await connection.queryRow(Self.fingerprint)
        for column in ["task_rows", "step_rows", "last_step_row"] {
            #expect(try after.decode(column, as: Int.self) == before.decode(column, as: Int.self), "\(column)")
        }
        for column in ["tasks", "steps"] {
            #expect(try after.decode(column, as: String.self) == before.decode(column, as: String.self), "\(column)")
        }
        // Each row in its task's week partition, none in the default ones, no foreign key left.
        let misplaced = try await connection.queryRow("""
            SELECT count(*) FROM (
                SELECT x.tableoid, x.task_created_at, t.created_at, 'task_transitions' AS parent FROM orcastra.task_transitions x JOIN orcastra.tasks t ON t.id = x.task_id
                UNION ALL
                SELECT x.tableoid, x.task_created_at, t.created_at, 'step_transitions' FROM orcastra.step_transitions x JOIN orcastra.tasks t ON t.id = x.task_id
            ) r
            WHERE r.task_created_at <> r.created_at
               OR r.tableoid::regclass::text <> 'orcastra.' || r.parent || '_p' || to_char(orcastra.history_week(r.created_at) AT TIME ZONE 'UTC', 'YYYYMMDD')
            """).decode(at: 0, as: Int.self)
        #expect(misplaced == 0)
        #expect(try await connection.queryRow("""
            SELECT count(*) FROM pg_constraint WHERE contype = 'f'
            AND conrelid IN ('orcastra.task_transitions'::regclass, 'orcastra.step_transitions'::regclass)
            """).decode(at: 0, as: Int.self) == 0)

        // The live task (ten days old) moves on: the new row has the next id and its week's key.
        try await connection.executeSimple("""
            UPDATE orcastra.steps s SET state = 'complete', state_reason = 'done', lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL
            FROM orcastra.tasks t WHERE t.id = s.task_id AND t.created_at BETWEEN now() - interval '11 days' AND now() - interval '9 days' AND s.name = 'first'
            """)
        let moved = try await connection.queryRow("""
            SELECT x.id, x.tableoid::regclass::text AS stored, 'orcastra.step_transitions_p' || to_char(orcastra.history_week(t.created_at) AT TIME ZONE 'UTC', 'YYYYMMDD') AS expected
            FROM orcastra.step_transitions x JOIN orcastra.tasks t ON t.id = x.task_id ORDER BY x.id DESC LIMIT 1
            """)
        #expect(try moved.decode("id", as: Int.self) > before.decode("last_step_row", as: Int.self))
        #expect(try moved.decode("stored", as: String.self) == moved.decode("expected", as: String.self))
        let violations = try await InvariantChecker().check(on: connection).filter { $0.invariant.hasPrefix("history") || $0.invariant.hasSuffix("transitions-legal") }
        #expect(violations.isEmpty, "\(violations.map(\.description))")
    }
}
