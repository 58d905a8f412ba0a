import Foundation
import OrcastraMigrations
import OrcastraPostgres
import OrcastraTesting
import Testing

/// 0012 moves the live work out of `orcastra.steps` into step_queue, step_leases, step_retries and
/// step_fanout_held (filled by functions/live_steps.sql). A database upgraded with work in every
/// live state keeps all of it: the enqueued step is claimed, the expired lease recovered, the due
/// retry enqueued, the held fan-out instance still held; and nothing is left behind in the tables.
@Suite(.timeLimit(.minutes(3))) struct LiveStepTablesMigrationTests {
    @Test func upgradeKeepsLiveStepsInEveryState() async throws {
        let connection = try await PostgresConnection.connect(try await TestDatabases.shared.makeEmptyDatabase())
        defer { Task { await connection.close() } }
        let bundled = try Migrator.bundled()
        // The schema as 0011 left it (with the functions the numbered migrations froze, as before
        // the repeatable files existed): enough to hold steps in each state.
        try await Migrator(migrations: bundled.migrations.filter { $0.version <= 11 }).migrate(on: connection)
        try await connection.execute("""
            INSERT INTO orcastra.templates (namespace, name, version, definition, source, content_hash, step_count) VALUES
              ('up', 'live', '1.0.0', '{"steps": [{"name": "s", "namespace": "up", "depends_on": [], "retry": {"max_attempts": 3}}]}', '', 'x', 1)
            """)
        try await connection.execute("""
            INSERT INTO orcastra.tasks (template_id, state, context, started_at) SELECT id, 'in_progress', '{}', now() FROM orcastra.templates
            """)
        // One step per live state, and a finished one; the group of the held instance is pending.
        try await connection.execute("""
            INSERT INTO orcastra.steps (task_id, name, namespace, state, max_attempts, pending_parents, attempts,
                                        enqueued_at, visible_at, lease_token, lease_owner, lease_expires_at, started_at, finished_at,
                                        for_each, max_parallel, instances, fanout_of, item_index)
            SELECT t.id, x.name, 'up', x.state, 3, x.pending, x.attempts, x.enqueued_at, x.visible_at,
                   x.token, x.owner, x.expires, x.started, x.finished, x.for_each::jsonpath, x.max_parallel, x.instances, NULL, NULL
            FROM orcastra.tasks t, (VALUES
                ('queued', 'enqueued', 0, 0, now() - interval '1 minute', now() - interval '1 minute', NULL::uuid, NULL, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL, NULL::integer, NULL::integer),
                ('running', 'in_progress', 0, 1, now() - interval '2 minutes', now(), gen_random_uuid(), 'gone-worker', now() - interval '1 second', now() - interval '1 minute', NULL, NULL, NULL, NULL),
                ('retrying', 'waiting_for_retry', 0, 1, now() - interval '3 minutes', now() - interval '1 second', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                ('done', 'complete', 0, 1, now() - interval '4 minutes', now(), NULL, NULL, NULL, now() - interval '4 minutes', now(), NULL, NULL, NULL),
                ('group', 'pending', 1, 0, NULL, now(), NULL, NULL, NULL, NULL, NULL, '$.context.items', 1, 2)
            ) AS x(name, state, pending, attempts, enqueued_at, visible_at, token, owner, expires, started, finished, for_each, max_parallel, instances)
            """)
        try await connection.execute("""
            INSERT INTO orcastra.steps (task_id, name, namespace, state, max_attempts, pending_parents, enqueued_at, fanout_of, item_index)
            SELECT g.task_id, 'group[' || i || ']', 'up', CASE WHEN i = 0 THEN 'enqueued' ELSE 'pending' END, 3, 0,
                   CASE WHEN i = 0 THEN now() END, g.id, i
            FROM orcastra.steps g, generate_series(0, 1) AS i WHERE g.name = 'group'
            """)

        try await bundled.migrate(on: connection)

        func names(_ table: String) async throws -> [String] {
            let query: SQL = "SELECT s.name FROM orcastra.\(unescaped: table) x JOIN orcastra.steps s ON s.id = x.step_id ORDER BY s.name"
            return try await connection.query(query).rows.map { try $0.decode("name") }
        }
        #expect(try await names("step_queue") == ["group[0]", "queued"])
        #expect(try await names("step_leases") == ["running"])
        #expect(try await names("step_retries") == ["retrying"])
        #expect(try await names("step_fanout_held") == ["group[1]"])
        #expect(try await connection.queryRow("SELECT orcastra.sync_live_steps() AS n").decode("n", as: Int64.self) == 0,
                "the tables were already right: syncing again changes nothing")

        // The work goes on through the new functions.
        let claimed = try await connection.query("SELECT step_name FROM orcastra.claim_steps('up', 'w', 10, 60000) ORDER BY step_name")
            .rows.map { try $0.decode("step_name", as: String.self) }
        #expect(claimed == ["group[0]", "queued"])
        #expect(try await connection.queryRow("SELECT orcastra.recover_expired_leases(10) AS n").decode("n", as: Int.self) == 1)
        #expect(try await connection.queryRow("SELECT orcastra.enqueue_due_retries(10) AS n").decode("n", as: Int.self) == 1)
        let reclaimed = try await connection.query("SELECT step_name FROM orcastra.claim_steps('up', 'w', 10, 60000) ORDER BY step_name")
            .rows.map { try $0.decode("step_name", as: String.self) }
        #expect(reclaimed == ["retrying", "running"])
        #expect(try await names("step_queue").isEmpty)
        #expect(try await names("step_leases") == ["group[0]", "queued", "retrying", "running"])
        #expect(try await names("step_retries").isEmpty)
        #expect(try await names("step_fanout_held") == ["group[1]"], "held until group[0] finishes (max_parallel 1)")
        // Every index left on steps names only columns a transition never changes.
        let indexed = try await connection.query("""
            SELECT DISTINCT a.attname FROM pg_index i
            JOIN pg_attribute a ON a.attrelid = i.indrelid
            WHERE i.indrelid = 'orcastra.steps'::regclass
              AND (a.attnum = ANY (i.indkey) OR pg_get_expr(i.indpred, i.indrelid) ~ ('\\m' || a.attname || '\\M'))
            ORDER BY 1
            """).rows.map { try $0.decode("attname", as: String.self) }
        #expect(indexed == ["fanout_of", "id", "item_index", "name", "task_id"])
    }
}
