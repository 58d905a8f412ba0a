import Foundation
import OrcastraInvariants
import OrcastraPostgres
import OrcastraTesting
import Testing

/// The references from steps to tasks and from results to steps, kept by statement-level triggers
/// since migration 0018 (functions/task_references.sql), and the set-based prune that deletes what
/// a task owns without them (functions/retention.sql; docs/retention.md, "Foreign keys").
@Suite(.timeLimit(.minutes(3))) struct OwnedReferencesTests {
    /// `count` finished tasks of shop/diamond written directly (as the prune bench loads them):
    /// four complete steps each, four edges, a result per step. Returns the task ids in order.
    func finishedTasks(_ count: Int, _ fixture: StoreFixture) async throws -> [UUID] {
        let rows = try await fixture.pool.query("""
            WITH t AS (
                INSERT INTO orcastra.tasks (template_id, state, state_reason, context, created_at, started_at, finished_at)
                SELECT id, 'complete', 'loaded', '{}'::jsonb, now() - interval '9 days', now() - interval '9 days',
                       now() - interval '9 days' + g * interval '1 second'
                FROM orcastra.templates CROSS JOIN generate_series(1, \(count)) g WHERE namespace = 'shop' AND name = 'diamond'
                RETURNING id, finished_at
            ), s AS (
                INSERT INTO orcastra.steps (task_id, name, namespace, state, state_reason, max_attempts, attempts, pending_parents, finished_at)
                SELECT t.id, n, 'shop', 'complete', 'loaded', 1, 1, 0, t.finished_at
                FROM (SELECT * FROM t ORDER BY finished_at) t CROSS JOIN unnest(ARRAY['start', 'left', 'right', 'join']) n
                RETURNING id, task_id, name
            ), r AS (
                INSERT INTO orcastra.step_results (step_id, result) SELECT id, '{"ok": true}' FROM s
            )
            INSERT INTO orcastra.step_edges (parent_id, child_id)
            SELECT p.id, c.id FROM s p JOIN s c ON c.task_id = p.task_id
            WHERE (p.name = 'start' AND c.name IN ('left', 'right')) OR (p.name IN ('left', 'right') AND c.name = 'join')
            RETURNING (SELECT array_agg(id ORDER BY finished_at) FROM t) AS ids
            """)
        return try #require(try rows.first?.decode("ids", as: [UUID].self))
    }

    func owned(by tasks: [UUID], _ fixture: StoreFixture) async throws -> Int {
        try await fixture.count("""
            SELECT (SELECT count(*) FROM orcastra.steps s WHERE s.task_id = ANY (\(tasks)))
                 + (SELECT count(*) FROM orcastra.step_results r JOIN orcastra.steps s ON s.id = r.step_id WHERE s.task_id = ANY (\(tasks)))
                 + (SELECT count(*) FROM orcastra.step_edges e JOIN orcastra.steps s ON s.id = e.child_id WHERE s.task_id = ANY (\(tasks)))
            """)
    }

    @Test func insertsNamingMissingParentsAreRefused() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.diamond)
        let task = try await finishedTasks(1, fixture)[0]
        let missingTask = UUID()
        let step = await #expect(throws: PostgresError.self) {
            try await fixture.pool.query("""
                INSERT INTO orcastra.steps (task_id, name, namespace, max_attempts, pending_parents)
                VALUES (\(task), 'extra', 'shop', 1, 0), (\(missingTask), 'orphan', 'shop', 1, 0)
                """)
        }
        #expect(step?.sqlState == "23503")
        #expect("\(step.map { "\($0)" } ?? "")".contains("refers to task \(missingTask.uuidString.lowercased()), which does not exist"))
        let result = await #expect(throws: PostgresError.self) {
            try await fixture.pool.query("INSERT INTO orcastra.step_results (step_id, result) VALUES (-42, '{}')")
        }
        #expect(result?.sqlState == "23503")
        #expect("\(result.map { "\($0)" } ?? "")".contains("refers to step -42, which does not exist"))
        // A key never moves; the hot path's updates (other columns) pass.
        let moved = await #expect(throws: PostgresError.self) {
            try await fixture.pool.query("UPDATE orcastra.steps SET task_id = \(missingTask) WHERE task_id = \(task)")
        }
        #expect(moved?.sqlState == "23503")
        _ = try await fixture.pool.query("UPDATE orcastra.steps SET state_reason = 'touched' WHERE task_id = \(task)")
        let truncated = await #expect(throws: PostgresError.self) { try await fixture.pool.query("TRUNCATE orcastra.tasks") }
        #expect(truncated?.sqlState == "23503")
        #expect(try await owned(by: [task], fixture) == 12)
        await fixture.pool.shutdown()
    }

    /// What the checks lock: each row they point at that another transaction wrote, FOR KEY SHARE
    /// until commit, so a concurrent delete waits; not the rows the transaction wrote itself, which
    /// no one else can delete meanwhile (locking them cost a fan-out of 10,000 instances 17–20 ms a
    /// statement). A lock shows as the row's xmax: the locking transaction's id.
    @Test func checksLockWhatOthersWroteAndNotWhatTheTransactionWrote() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.diamond)
        let task = try await finishedTasks(1, fixture)[0]
        let start: Int64 = try await fixture.pool.query("SELECT id FROM orcastra.steps WHERE task_id = \(task) AND name = 'start'").first!.decode("id")
        let join: Int64 = try await fixture.pool.query("SELECT id FROM orcastra.steps WHERE task_id = \(task) AND name = 'join'").first!.decode("id")
        try await fixture.pool.withTransaction { connection in
            let added: Int64 = try await connection.queryRow("""
                INSERT INTO orcastra.steps (task_id, name, namespace, max_attempts, pending_parents)
                VALUES (\(task), 'extra', 'shop', 1, 1) RETURNING id
                """).decode("id")
            try await connection.query("INSERT INTO orcastra.step_edges (parent_id, child_id) VALUES (\(start), \(join)), (\(join), \(added))")
            try await connection.query("INSERT INTO orcastra.step_results (step_id, result) VALUES (\(added), '{}')")
            let me: Int64 = try await connection.queryRow("SELECT pg_current_xact_id()::text::bigint AS me").decode("me")
            let lockers = try await connection.query("""
                SELECT name, xmax::text::bigint AS locker FROM orcastra.steps WHERE task_id = \(task) AND name IN ('start', 'join', 'extra')
                """)
            let lockedBy = Dictionary(uniqueKeysWithValues: try lockers.map { (try $0.decode("name", as: String.self), try $0.decode("locker", as: Int64.self)) })
            #expect(lockedBy == ["start": me, "join": me, "extra": 0], "\(lockedBy), this transaction \(me)")
            #expect(try await connection.queryRow("SELECT xmax::text::bigint AS locker FROM orcastra.tasks WHERE id = \(task)").decode("locker", as: Int64.self) == me)
            // Another transaction's delete of a step pointed at waits for this one.
            let delete = await #expect(throws: PostgresError.self) {
                try await fixture.pool.withTransaction { other in
                    try await other.query("SET LOCAL lock_timeout = '200ms'")
                    try await other.query("DELETE FROM orcastra.steps WHERE id = \(start)")
                }
            }
            #expect(delete?.sqlState == "55P03")
        }
        await fixture.pool.shutdown()
    }

    @Test func deletingATaskDeletesWhatItOwns() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.diamond)
        let tasks = try await finishedTasks(3, fixture)
        _ = try await fixture.pool.query("DELETE FROM orcastra.tasks WHERE id = ANY (\(Array(tasks.prefix(2))))")
        #expect(try await owned(by: Array(tasks.prefix(2)), fixture) == 0)
        #expect(try await owned(by: [tasks[2]], fixture) == 12)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.step_results") == 4)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.step_edges") == 4)
        let connection = try await PostgresConnection.connect(fixture.pool.conninfo)
        #expect(try await InvariantChecker(settleGrace: .zero).check(on: connection).filter { $0.invariant == "owned-rows-have-owners" }.isEmpty)
        // With the triggers off, an orphan is left; the checker names it.
        try await connection.executeSimple("SET session_replication_role = replica")
        _ = try await connection.execute("DELETE FROM orcastra.tasks WHERE id = \(tasks[2])")
        try await connection.executeSimple("SET session_replication_role = origin")
        let orphans = try await InvariantChecker(settleGrace: .zero).check(on: connection).filter { $0.invariant == "owned-rows-have-owners" }
        #expect(orphans.count == 4)
        #expect(orphans.allSatisfy { $0.taskID == tasks[2] && $0.message.contains("does not exist") })
        await connection.close()
        await fixture.pool.shutdown()
    }

    /// The prune's two ways of reading what a batch owns: one range scan per table when the steps'
    /// ids are neighbours, an index descent per step when live tasks' steps lie between them.
    @Test(arguments: [false, true]) func pruneDeletesExactlyTheLockedTasks(scattered: Bool) async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.diamond)
        var doomed = try await finishedTasks(2, fixture)
        var kept: [UUID] = []
        if scattered {
            // Twenty unfinished tasks' steps between the two batches' steps.
            kept = try await finishedTasks(20, fixture)
            _ = try await fixture.pool.query("UPDATE orcastra.tasks SET finished_at = now() WHERE id = ANY (\(kept))")
            doomed += try await finishedTasks(2, fixture)
        }
        let row = try await fixture.pool.query("""
            WITH c AS (SELECT array_agg(task_id ORDER BY finished_at) AS ids, array_agg(finished_at ORDER BY finished_at) AS finished
                       FROM orcastra.prunable_tasks(NULL, '{"complete_ms": 604800000}', NULL, NULL, NULL, 100)),
                 l AS (SELECT array_agg(l.task_id) AS ids, sum(l.owned_rows) AS rows FROM c, orcastra.lock_tasks_for_pruning(c.ids, c.finished, 10000) l)
            SELECT l.ids, l.rows, d.deleted_rows FROM l, orcastra.delete_tasks(l.ids) d
            """).first
        let pruned = try #require(try row?.decode("ids", as: [UUID].self))
        #expect(Set(pruned) == Set(doomed))
        #expect(try row?.decode("rows", as: Int64.self) == Int64(doomed.count * 13))
        #expect(try row?.decode("deleted_rows", as: Int64.self) == Int64(doomed.count * 13))
        #expect(try await owned(by: doomed, fixture) == 0)
        #expect(try await owned(by: kept, fixture) == kept.count * 12)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks") == kept.count)
        // A budget of 20 rows takes the oldest task only (13 rows; two would be 26).
        if scattered {
            _ = try await fixture.pool.query("UPDATE orcastra.tasks SET finished_at = now() - interval '8 days' WHERE id = ANY (\(kept))")
            let cut = try await fixture.pool.query("""
                WITH c AS (SELECT array_agg(task_id ORDER BY finished_at) AS ids, array_agg(finished_at ORDER BY finished_at) AS finished
                           FROM orcastra.prunable_tasks(NULL, '{"complete_ms": 604800000}', NULL, NULL, NULL, 100))
                SELECT array_agg(l.task_id) AS ids FROM c, orcastra.lock_tasks_for_pruning(c.ids, c.finished, 20) l
                """).first
            #expect(try cut?.decode("ids", as: [UUID].self).count == 1)
        }
        await fixture.pool.shutdown()
    }

    /// Several orchestrators on one backlog: both take the oldest candidates, so the one whose
    /// batch finds every candidate held by the other's takes the next ones instead of none (and
    /// keeps pruning, rather than ending its round).
    @Test func aBatchWhoseCandidatesAreAllHeldTakesTheNextOnes() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.diamond)
        let tasks = try await finishedTasks(3, fixture)
        // 13 rows: one diamond task a batch, and one candidate.
        let prune: SQL = "SELECT tasks, deleted_rows, candidates FROM orcastra.prune_expired_tasks('{\"complete_ms\": 604800000}', 13)"
        try await fixture.pool.withTransaction { holder in
            let first = try await holder.queryRow(prune)
            #expect(try first.decode("tasks", as: Int.self) == 1)
            let second = try #require(try await fixture.pool.query(prune).first)
            #expect(try second.decode("tasks", as: Int.self) == 1)
            #expect(try second.decode("candidates", as: Int.self) == 2)
            #expect(try second.decode("deleted_rows", as: Int.self) == 13)
            // The second oldest went; the oldest waits for the holder, the newest for a next batch.
            #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks WHERE id = \(tasks[1])") == 0)
            #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks WHERE id = ANY (\([tasks[0], tasks[2]]))") == 2)
        }
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks") == 1)
        #expect(try await owned(by: Array(tasks.prefix(2)), fixture) == 0)
        await fixture.pool.shutdown()
    }
}
