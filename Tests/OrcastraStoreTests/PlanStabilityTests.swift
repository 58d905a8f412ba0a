import Foundation
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

/// The protocol functions keep their plans for the life of a connection. Plans made while the
/// tables were nearly empty must stay on the indexes when the tables grow before the next ANALYZE
/// (a new deployment filling up, a bulk import, autovacuum behind): otherwise every report scans
/// all steps. The functions run with generic plans that may not scan a table or hash-join it
/// (docs/benchmarks.md, "Plans").
@Suite(.timeLimit(.minutes(3))) struct PlanStabilityTests {
    /// Runs `count` 4-step tasks through create → (claim, report) × 4 on `connection`, as a worker
    /// does, and returns the buffers of orcastra.steps (heap and indexes) they touched.
    static func run(_ count: Int, on connection: PostgresConnection, reader: PostgresConnection) async throws -> Int {
        let before = try await blocks(connection, reader)
        for _ in 0..<count {
            _ = try await connection.query("SELECT * FROM orcastra.create_task_by_name('bench', 'chain')")
            var claimed = try await connection.query("SELECT step_id, lease_token FROM orcastra.claim_steps('bench', 'w', 1, 30000)")
            while let row = claimed.first {
                let id: Int64 = try row.decode("step_id"), token: UUID = try row.decode("lease_token")
                try await connection.execute("BEGIN")
                _ = try await connection.query("""
                    SELECT * FROM orcastra.report_steps(\([id]), \([token]), ARRAY['{}']::jsonb[], ARRAY[NULL]::text[], ARRAY[NULL]::bigint[])
                    """)
                claimed = try await connection.query("SELECT step_id, lease_token FROM orcastra.claim_steps('bench', 'w', 1, 30000)")
                try await connection.execute("COMMIT")
            }
        }
        return try await blocks(connection, reader) - before
    }

    /// Buffers of orcastra.steps read or hit so far, once `connection` has flushed its statistics.
    static func blocks(_ connection: PostgresConnection, _ reader: PostgresConnection) async throws -> Int {
        _ = try await connection.query("SELECT pg_stat_force_next_flush()")
        var total = 0
        _ = await waitUntil(within: .seconds(5), every: .milliseconds(50)) {
            let now = try await reader.queryRow("""
                SELECT (coalesce(heap_blks_read, 0) + coalesce(heap_blks_hit, 0) + coalesce(idx_blks_read, 0) + coalesce(idx_blks_hit, 0))::bigint AS n
                FROM pg_statio_user_tables WHERE schemaname = 'orcastra' AND relname = 'steps'
                """).decode("n", as: Int.self)
            defer { total = now }
            return now == total && now > 0   // two equal readings: the flush is in
        }
        return total
    }

    @Test func plansMadeOnEmptyTablesStayOnTheIndexesWhenTheTablesGrow() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.chain(4))
        let url = fixture.pool.conninfo
        let worker = try await PostgresConnection.connect(url)
        let loader = try await PostgresConnection.connect(url)
        let reader = try await PostgresConnection.connect(url)
        defer { Task { await worker.close(); await loader.close(); await reader.close() } }
        for table in ["tasks", "steps", "step_edges", "step_results"] {
            try await loader.execute("ALTER TABLE orcastra.\(ident: table) SET (autovacuum_enabled = false)")
        }

        // Plans are made and cached now, on nearly empty tables.
        let small = try await Self.run(10, on: worker, reader: reader)

        // 100,000 finished tasks arrive; no ANALYZE runs.
        try await loader.execute("""
            INSERT INTO orcastra.tasks (template_id, state, state_reason, context, created_at, started_at, finished_at)
            SELECT (SELECT id FROM orcastra.templates LIMIT 1), 'complete', 'history', '{}', now(), now(), now()
            FROM generate_series(1, 100000)
            """)
        // Each with a step and a fan-out instance of it: a reader of orcastra.step_links that
        // joined the view instead of restricting it by id would visit every instance.
        try await loader.execute("""
            INSERT INTO orcastra.steps (task_id, name, namespace, state, state_reason, max_attempts, attempts, pending_parents, finished_at)
            SELECT t.id, 's0', 'bench', 'complete', 'history', 3, 1, 0, now()
            FROM orcastra.tasks t WHERE t.state_reason = 'history'
            """)
        try await loader.execute("""
            INSERT INTO orcastra.steps (task_id, name, namespace, state, state_reason, max_attempts, attempts, pending_parents, finished_at,
                                        fanout_of, item_index)
            SELECT s.task_id, 's0[0]', 'bench', 'complete', 'history', 3, 1, 0, now(), s.id, 0
            FROM orcastra.steps s WHERE s.state_reason = 'history'
            """)

        let large = try await Self.run(10, on: worker, reader: reader)
        print("buffers of orcastra.steps touched by 10 tasks: \(small) on small tables, \(large) after 200,000 more steps")
        // A scan of steps now touches thousands of buffers per statement; index lookups a few each.
        #expect(large < 4 * max(small, 500), "10 tasks touched \(large) buffers of orcastra.steps after it grew (\(small) before)")
    }
}
