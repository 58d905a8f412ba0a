import Foundation
import OrcastraInvariants
import OrcastraMigrations
import OrcastraPostgres
import OrcastraTesting
import Testing

/// Migration 0018 on a database with data from 0015: the foreign keys among what a task owns give
/// way to statement-level triggers, every row stays, and the prune then deletes the finished task
/// with everything it owns while the live one keeps its rows (docs/retention.md, "Foreign keys
/// among what a task owns").
@Suite(.timeLimit(.minutes(3))) struct OwnedReferencesUpgradeTests {
    /// A finished task (10 days ago) and a live one, each with two steps, an edge and results,
    /// written on the 0015 schema.
    static let data = """
        INSERT INTO orcastra.templates (namespace, name, version, definition, source, content_hash, step_count)
        VALUES ('shop', 'pair', '1.0.0', '{}', '', 'x', 2);
        WITH t AS (
            INSERT INTO orcastra.tasks (template_id, state, state_reason, context, created_at, started_at, finished_at)
            SELECT (SELECT id FROM orcastra.templates), st, 'loaded', jsonb_build_object('state', st), now() - interval '10 days',
                   now() - interval '10 days', CASE WHEN st = 'complete' THEN now() - interval '10 days' END
            FROM unnest(ARRAY['complete', 'in_progress']) AS st RETURNING id, state
        ), s AS (
            INSERT INTO orcastra.steps (task_id, name, namespace, state, state_reason, max_attempts, attempts, pending_parents)
            SELECT t.id, n.name, 'shop', CASE WHEN t.state = 'complete' THEN 'complete' ELSE n.live END, 'loaded', 1, 1, 0
            FROM t CROSS JOIN (VALUES ('first', 'complete'), ('second', 'pending')) AS n(name, live)
            RETURNING id, task_id, name, state
        ), r AS (
            INSERT INTO orcastra.step_results (step_id, result) SELECT s.id, '{"ok": true}' FROM s WHERE s.state = 'complete'
        )
        INSERT INTO orcastra.step_edges (parent_id, child_id)
        SELECT a.id, b.id FROM s a JOIN s b ON b.task_id = a.task_id AND b.name = 'second' WHERE a.name = 'first';
        """

    static let counts: SQL = """
        SELECT (SELECT count(*) FROM orcastra.tasks) AS tasks, (SELECT count(*) FROM orcastra.steps) AS steps,
               (SELECT count(*) FROM orcastra.step_results) AS results, (SELECT count(*) FROM orcastra.step_edges) AS edges,
               (SELECT count(*) FROM pg_constraint WHERE contype = 'f'
                AND conrelid IN ('orcastra.steps'::regclass, 'orcastra.step_results'::regclass)) AS foreign_keys
        """

    @Test func ownedRowsKeepTheirReferencesAcrossTheUpgrade() async throws {
        let connection = try await PostgresConnection.connect(try await TestDatabases.shared.makeEmptyDatabase())
        defer { Task { await connection.close() } }
        let bundled = try Migrator.bundled()
        try await Migrator(migrations: bundled.migrations.filter { $0.version <= 15 }).migrate(on: connection)
        try await connection.executeSimple(Self.data)
        let before = try await connection.queryRow(Self.counts)
        #expect(try before.decode("foreign_keys", as: Int.self) == 2)

        try await bundled.migrate(on: connection)

        let after = try await connection.queryRow(Self.counts)
        for column in ["tasks", "steps", "results", "edges"] {
            #expect(try after.decode(column, as: Int.self) == before.decode(column, as: Int.self), "\(column)")
        }
        #expect(try after.decode("foreign_keys", as: Int.self) == 0)
        // The triggers stand in for them.
        let orphan = await #expect(throws: PostgresError.self) {
            try await connection.execute("INSERT INTO orcastra.step_results (step_id, result) VALUES (-1, '{}')")
        }
        #expect(orphan?.sqlState == "23503")

        let pruned = try await connection.queryRow("""
            SELECT tasks, deleted_rows FROM orcastra.prune_expired_tasks('{"complete_ms": 604800000}', 10000)
            """)
        #expect(try pruned.decode("tasks", as: Int.self) == 1)
        #expect(try pruned.decode("deleted_rows", as: Int.self) == 1 + 2 + 2 + 1)
        let left = try await connection.queryRow(Self.counts)
        #expect(try left.decode("tasks", as: Int.self) == 1)
        #expect(try left.decode("steps", as: Int.self) == 2)
        #expect(try left.decode("results", as: Int.self) == 1)
        #expect(try left.decode("edges", as: Int.self) == 1)
        let violations = try await InvariantChecker().check(on: connection).filter { $0.invariant == "owned-rows-have-owners" }
        #expect(violations.isEmpty, "\(violations.map(\.description))")
    }
}
