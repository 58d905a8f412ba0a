import Foundation
import OrcastraMigrations
import OrcastraPostgres
import OrcastraTesting
import Testing

/// Migration 0016 leaves the steps' history two indexes, its primary key and (task_id, step_id, id),
/// on every weekly partition, old and new; the readers of a task's or a step's history go by it.
@Suite(.timeLimit(.minutes(5))) struct StepHistoryIndexTests {
    @Test func everyPartitionHasThePrimaryKeyAndTheTaskStepIndexOnly() async throws {
        let connection = try await PostgresConnection.connect(try await TestDatabases.shared.makeDatabase())
        defer { Task { await connection.close() } }
        // A partition made after the migration (a week a year from now) inherits the index too.
        _ = try await connection.query("SELECT orcastra.create_history_partition('step_transitions', orcastra.history_week(now() + interval '1 year'))")
        let indexes = try await connection.query("""
            SELECT c.relname AS partition, count(*) AS n,
                   count(*) FILTER (WHERE pg_get_indexdef(i.indexrelid) LIKE '%(task_id, step_id, id)') AS task_step,
                   count(*) FILTER (WHERE i.indisprimary) AS primary_key
            FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid JOIN pg_index i ON i.indrelid = c.oid
            WHERE h.inhparent = 'orcastra.step_transitions'::regclass
            GROUP BY c.relname
            """)
        #expect(indexes.count >= 2)
        for row in indexes {
            let partition: String = try row.decode("partition")
            #expect(try row.decode("n", as: Int.self) == 2, "\(partition)")
            #expect(try row.decode("task_step", as: Int.self) == 1, "\(partition)")
            #expect(try row.decode("primary_key", as: Int.self) == 1, "\(partition)")
        }
    }

    /// One step's history (what `orcastra step show` reads) is an index range, not a scan, also with
    /// a plan that may not scan a table (the protocol functions' setting; `EXPLAIN` on an empty
    /// table would otherwise prefer a scan).
    @Test func oneStepsHistoryIsReadThroughTheIndex() async throws {
        let connection = try await PostgresConnection.connect(try await TestDatabases.shared.makeDatabase())
        defer { Task { await connection.close() } }
        _ = try await connection.execute("SET enable_seqscan = off")
        let plan = try await connection.query("""
            EXPLAIN (COSTS OFF) SELECT st.id FROM orcastra.step_transitions st
            WHERE st.task_id = '00000000-0000-0000-0000-000000000001' AND st.step_id = 1 ORDER BY st.id
            """).map { try $0.decode(at: 0, as: String.self) }.joined(separator: "\n")
        #expect(plan.contains("task_id_step_id_id_idx"), "\(plan)")
        #expect(!plan.contains("Seq Scan"), "\(plan)")
    }
}
