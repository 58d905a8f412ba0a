import Foundation
import OrcastraPostgres

/// One broken rule: which invariant, where, and a sentence a person can act on.
public struct InvariantViolation: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The invariant's name, e.g. `step-transitions-legal` (see `InvariantChecker.invariants`).
    public var invariant: String
    public var taskID: UUID?
    public var stepID: Int64?
    public var stepName: String?
    /// One readable sentence.
    public var message: String

    public init(invariant: String, taskID: UUID?, stepID: Int64?, stepName: String?, message: String) {
        self.invariant = invariant
        self.taskID = taskID
        self.stepID = stepID
        self.stepName = stepName
        self.message = message
    }

    enum CodingKeys: String, CodingKey {
        case invariant, message
        case taskID = "task_id"
        case stepID = "step_id"
        case stepName = "step_name"
    }

    public var description: String {
        var place: [String] = []
        if let taskID { place.append("task \(taskID.uuidString.lowercased())") }
        if let stepName, let stepID { place.append("step \(stepName) (\(stepID))") } else if let stepID { place.append("step \(stepID)") }
        return "[\(invariant)] " + (place.isEmpty ? "" : place.joined(separator: ", ") + ": ") + message
    }
}

/// What one run of the checker saw.
public struct InvariantReport: Sendable, Codable {
    public var invariants: Int
    public var tasks: Int
    public var steps: Int
    public var violations: [InvariantViolation]
    public var holds: Bool { violations.isEmpty }

    enum CodingKeys: String, CodingKey { case invariants, tasks, steps, violations }
}

/// Checks that what the database holds obeys Orcastra's rules (docs/reliability.md).
///
/// Each invariant is one set-based SQL query over the whole schema, and every query runs in the same
/// read-only REPEATABLE READ transaction, so the checker sees one consistent snapshot while workers
/// and orchestrators keep running. It never writes.
public struct InvariantChecker: Sendable {
    public struct Invariant: Sendable {
        public let name: String
        /// What must hold, in one sentence.
        public let rule: String
        /// Returns rows (task_id uuid, step_id bigint, step_name text, message text); $1 = row limit.
        let sql: String
    }

    /// At most this many violations are reported per invariant (a systematic bug repeats itself).
    public var maximumPerInvariant: Int
    /// A live task whose state disagrees with its steps is only reported once nothing in it changed
    /// for this long, so a check racing a running orchestrator does not report a settlement in flight.
    public var settleGrace: Duration

    public init(maximumPerInvariant: Int = 1000, settleGrace: Duration = .seconds(5)) {
        self.maximumPerInvariant = maximumPerInvariant
        self.settleGrace = settleGrace
    }

    /// The violations found; empty when every invariant holds.
    public func check(on connection: PostgresConnection) async throws -> [InvariantViolation] {
        try await report(on: connection).violations
    }

    /// The violations plus how many tasks and steps were checked.
    public func report(on connection: PostgresConnection) async throws -> InvariantReport {
        let graceMilliseconds = Int64(settleGrace.components.seconds * 1000 + settleGrace.components.attoseconds / 1_000_000_000_000_000)
        try await connection.executeSimple("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        do {
            let counts = try await connection.queryRow("""
                SELECT (SELECT count(*) FROM orcastra.tasks) AS tasks, (SELECT count(*) FROM orcastra.steps) AS steps
                """)
            var violations: [InvariantViolation] = []
            for invariant in Self.invariants {
                let text = invariant.sql
                    .replacingOccurrences(of: ":limit", with: String(maximumPerInvariant))
                    .replacingOccurrences(of: ":grace_ms", with: String(graceMilliseconds))
                for row in try await connection.query(SQL(unsafeRaw: text)) {
                    violations.append(InvariantViolation(
                        invariant: invariant.name,
                        taskID: try row.decode("task_id", as: UUID?.self),
                        stepID: try row.decode("step_id", as: Int64?.self),
                        stepName: try row.decode("step_name", as: String?.self),
                        message: try row.decode("message", as: String.self)))
                }
            }
            try await connection.executeSimple("COMMIT")
            return InvariantReport(invariants: Self.invariants.count, tasks: try counts.decode("tasks"), steps: try counts.decode("steps"),
                                   violations: violations)
        } catch {
            try? await connection.executeSimple("ROLLBACK")
            throw error
        }
    }

    // MARK: - The invariants

    static let terminal = "('complete', 'cancelled', 'resolved_manually')"
    static let done = "('complete', 'resolved_manually')"
    /// What lets a task complete, and what pending_parents no longer counts.
    static let finished = "('complete', 'resolved_manually', 'skipped')"

    public static let invariants: [Invariant] = [
        Invariant(
            name: "terminal-task-steps",
            rule: "A complete task has only complete, resolved_manually or skipped steps; a cancelled or resolved_manually task has no step that is pending, enqueued or waiting_for_retry (a running step is cancelled at its worker's next report).",
            sql: """
                SELECT t.id AS task_id, s.id AS step_id, s.name AS step_name,
                       format('The task is %s but its step %s is %s.', t.state, s.name, s.state) AS message
                FROM orcastra.tasks t JOIN orcastra.steps s ON s.task_id = t.id
                WHERE (t.state = 'complete' AND s.state NOT IN \(finished))
                   OR (t.state IN ('cancelled', 'resolved_manually') AND s.state IN ('pending', 'enqueued', 'waiting_for_retry'))
                ORDER BY s.id LIMIT :limit
                """),
        Invariant(
            name: "step-transitions-legal",
            rule: "Each step's log starts with a creation row (from NULL to pending or enqueued), every later row is a legal move whose from_state is the previous row's to_state, and the last to_state is the step's current state.",
            sql: """
                WITH log AS (
                    SELECT st.id, st.step_id, st.from_state, st.to_state,
                           lag(st.to_state) OVER w AS previous, row_number() OVER w AS n
                    FROM orcastra.step_transitions st
                    WINDOW w AS (PARTITION BY st.step_id ORDER BY st.id)
                ), bad_rows AS (
                    SELECT l.step_id, l.id,
                           CASE WHEN l.n = 1 AND l.from_state IS NOT NULL
                                    THEN format('Its first logged move (transition %s) is from %s, not a creation from NULL.', l.id, l.from_state)
                                WHEN l.n = 1 AND l.to_state NOT IN ('pending', 'enqueued')
                                    THEN format('It was created in %s (transition %s); a step starts pending or enqueued.', l.to_state, l.id)
                                WHEN l.n > 1 AND l.from_state IS DISTINCT FROM l.previous
                                    THEN format('Transition %s starts from %s but the previous one ended in %s: a move is missing.', l.id, coalesce(l.from_state, 'NULL'), l.previous)
                                ELSE format('Transition %s, %s to %s, is not a legal step move.', l.id, l.from_state, l.to_state) END AS message
                    FROM log l
                    WHERE (l.n = 1 AND (l.from_state IS NOT NULL OR l.to_state NOT IN ('pending', 'enqueued')))
                       OR (l.n > 1 AND l.from_state IS DISTINCT FROM l.previous)
                       OR (l.n > 1 AND NOT EXISTS (SELECT 1 FROM orcastra.step_state_transitions_allowed a
                                                   WHERE a.from_state = l.from_state AND a.to_state = l.to_state))
                ), last_rows AS (
                    SELECT DISTINCT ON (st.step_id) st.step_id, st.to_state
                    FROM orcastra.step_transitions st ORDER BY st.step_id, st.id DESC
                ), mismatched AS (
                    SELECT s.id AS step_id, s.id AS id,
                           CASE WHEN l.step_id IS NULL THEN format('The step is %s but has no logged move at all.', s.state)
                                ELSE format('The step is %s but its last logged move ends in %s.', s.state, l.to_state) END AS message
                    FROM orcastra.steps s LEFT JOIN last_rows l ON l.step_id = s.id
                    WHERE l.to_state IS DISTINCT FROM s.state
                )
                SELECT s.task_id, s.id AS step_id, s.name AS step_name, b.message
                FROM (SELECT * FROM bad_rows UNION ALL SELECT * FROM mismatched) b JOIN orcastra.steps s ON s.id = b.step_id
                ORDER BY b.step_id, b.id LIMIT :limit
                """),
        Invariant(
            name: "task-transitions-legal",
            rule: "Each task's log starts with a creation row (from NULL to pending or in_progress), every later row is a legal move whose from_state is the previous row's to_state, and the last to_state is the task's current state.",
            sql: """
                WITH log AS (
                    SELECT tt.id, tt.task_id, tt.from_state, tt.to_state,
                           lag(tt.to_state) OVER w AS previous, row_number() OVER w AS n
                    FROM orcastra.task_transitions tt
                    WINDOW w AS (PARTITION BY tt.task_id ORDER BY tt.id)
                ), bad_rows AS (
                    SELECT l.task_id, l.id,
                           CASE WHEN l.n = 1 AND l.from_state IS NOT NULL
                                    THEN format('Its first logged move (transition %s) is from %s, not a creation from NULL.', l.id, l.from_state)
                                WHEN l.n = 1 AND l.to_state NOT IN ('pending', 'in_progress')
                                    THEN format('It was created in %s (transition %s); a task starts pending or in_progress.', l.to_state, l.id)
                                WHEN l.n > 1 AND l.from_state IS DISTINCT FROM l.previous
                                    THEN format('Transition %s starts from %s but the previous one ended in %s: a move is missing.', l.id, coalesce(l.from_state, 'NULL'), l.previous)
                                ELSE format('Transition %s, %s to %s, is not a legal task move.', l.id, l.from_state, l.to_state) END AS message
                    FROM log l
                    WHERE (l.n = 1 AND (l.from_state IS NOT NULL OR l.to_state NOT IN ('pending', 'in_progress')))
                       OR (l.n > 1 AND l.from_state IS DISTINCT FROM l.previous)
                       OR (l.n > 1 AND NOT EXISTS (SELECT 1 FROM orcastra.task_state_transitions_allowed a
                                                   WHERE a.from_state = l.from_state AND a.to_state = l.to_state))
                ), last_rows AS (
                    SELECT DISTINCT ON (tt.task_id) tt.task_id, tt.to_state
                    FROM orcastra.task_transitions tt ORDER BY tt.task_id, tt.id DESC
                ), mismatched AS (
                    SELECT t.id AS task_id, 0::bigint AS id,
                           CASE WHEN l.task_id IS NULL THEN format('The task is %s but has no logged move at all.', t.state)
                                ELSE format('The task is %s but its last logged move ends in %s.', t.state, l.to_state) END AS message
                    FROM orcastra.tasks t LEFT JOIN last_rows l ON l.task_id = t.id
                    WHERE l.to_state IS DISTINCT FROM t.state
                )
                SELECT b.task_id, NULL::bigint AS step_id, NULL::text AS step_name, b.message
                FROM (SELECT * FROM bad_rows UNION ALL SELECT * FROM mismatched) b
                ORDER BY b.task_id, b.id LIMIT :limit
                """),
        Invariant(
            name: "parents-before-children",
            rule: "No step went in_progress before its parents allowed it (transition ids give the order: a parent's outcome commits before the child can be claimed): with trigger all_success every parent completed or was resolved; with none_failed every parent completed, was resolved or skipped; with all_done every parent finished (complete, resolved, skipped or error); with one_success at least one parent completed or was resolved.",
            sql: """
                WITH started AS (
                    SELECT step_id, min(id) AS first_start FROM orcastra.step_transitions
                    WHERE to_state = 'in_progress' GROUP BY step_id
                ), outcome AS (
                    SELECT step_id, min(id) FILTER (WHERE to_state IN \(done)) AS succeeded,
                           min(id) FILTER (WHERE to_state IN \(finished)) AS passed,
                           min(id) FILTER (WHERE to_state IN ('complete', 'resolved_manually', 'skipped', 'error')) AS ended
                    FROM orcastra.step_transitions GROUP BY step_id
                ), one_success_ok AS (
                    SELECT st.step_id FROM started st
                    JOIN orcastra.steps c ON c.id = st.step_id AND c.trigger_rule = 'one_success'
                    JOIN orcastra.step_edges e ON e.child_id = c.id
                    JOIN outcome o ON o.step_id = e.parent_id AND o.succeeded < st.first_start
                ), finished AS (
                    SELECT o.step_id, CASE c.trigger_rule WHEN 'none_failed' THEN o.passed WHEN 'all_done' THEN o.ended
                                                          ELSE o.succeeded END AS finished_at, e.child_id
                    FROM outcome o JOIN orcastra.step_edges e ON e.parent_id = o.step_id JOIN orcastra.steps c ON c.id = e.child_id
                )
                SELECT c.task_id, c.id AS step_id, c.name AS step_name,
                       CASE WHEN f.finished_at IS NULL
                            THEN format('It went in_progress (transition %s) but its parent %s never completed (it is %s).', st.first_start, p.name, p.state)
                            ELSE format('It went in_progress (transition %s) before its parent %s completed (transition %s).', st.first_start, p.name, f.finished_at) END AS message
                FROM started st
                JOIN orcastra.step_edges e ON e.child_id = st.step_id
                JOIN orcastra.steps c ON c.id = e.child_id
                JOIN orcastra.steps p ON p.id = e.parent_id
                LEFT JOIN finished f ON f.step_id = e.parent_id AND f.child_id = e.child_id
                WHERE (f.finished_at IS NULL OR f.finished_at > st.first_start)
                  AND c.trigger_rule IS DISTINCT FROM 'one_success'
                UNION ALL
                SELECT c.task_id, c.id, c.name, format('It went in_progress (transition %s) with trigger one_success before any parent completed.', st.first_start)
                FROM started st JOIN orcastra.steps c ON c.id = st.step_id AND c.trigger_rule = 'one_success'
                WHERE NOT EXISTS (SELECT 1 FROM one_success_ok k WHERE k.step_id = st.step_id)
                ORDER BY step_id LIMIT :limit
                """),
        Invariant(
            name: "live-step-tables",
            rule: "The live-step tables agree with the steps' states: each enqueued step has exactly one row in step_queue, each in_progress step one in step_leases, each step waiting_for_retry one in step_retries and each pending fan-out instance one in step_fanout_held, each with the step's own values (namespace, priority, enqueued_at, visible_at, limit_scope, fanout_of, item_index); and the tables hold no other rows (claiming, lease recovery and retries read only these tables).",
            sql: """
                WITH live_rows AS (
                    SELECT q.step_id, 'step_queue' AS tbl, 'enqueued' AS for_state,
                           (q.namespace, q.priority, q.enqueued_at, q.limit_scope, q.fanout_of)
                               IS NOT DISTINCT FROM (s.namespace, s.priority, s.enqueued_at, s.limit_scope, s.fanout_of) AS matches
                    FROM orcastra.step_queue q LEFT JOIN orcastra.steps s ON s.id = q.step_id
                    UNION ALL
                    SELECT l.step_id, 'step_leases', 'in_progress',
                           (l.namespace, l.limit_scope, l.fanout_of) IS NOT DISTINCT FROM (s.namespace, s.limit_scope, s.fanout_of)
                    FROM orcastra.step_leases l LEFT JOIN orcastra.steps s ON s.id = l.step_id
                    UNION ALL
                    SELECT r.step_id, 'step_retries', 'waiting_for_retry',
                           (r.namespace, r.visible_at, r.fanout_of) IS NOT DISTINCT FROM (s.namespace, s.visible_at, s.fanout_of)
                    FROM orcastra.step_retries r LEFT JOIN orcastra.steps s ON s.id = r.step_id
                    UNION ALL
                    SELECT h.step_id, 'step_fanout_held', 'pending', (h.fanout_of, h.item_index) IS NOT DISTINCT FROM (s.fanout_of, s.item_index)
                    FROM orcastra.step_fanout_held h LEFT JOIN orcastra.steps s ON s.id = h.step_id
                ), wrong AS (
                    SELECT r.step_id,
                           CASE WHEN s.id IS NULL THEN format('It no longer exists but has a row in %s.', r.tbl)
                                WHEN s.state IS DISTINCT FROM r.for_state THEN format('It is %s but has a row in %s, which holds %s steps only.', s.state, r.tbl, r.for_state)
                                ELSE format('Its row in %s does not hold the step''s own values.', r.tbl) END AS message
                    FROM live_rows r LEFT JOIN orcastra.steps s ON s.id = r.step_id
                    WHERE s.id IS NULL OR s.state IS DISTINCT FROM r.for_state OR NOT r.matches
                ), counted AS (
                    SELECT s.id AS step_id,
                           format('It is %s but has %s rows in %s; it must have exactly one.', s.state, count(r.step_id),
                                  CASE s.state WHEN 'enqueued' THEN 'step_queue' WHEN 'in_progress' THEN 'step_leases'
                                               WHEN 'waiting_for_retry' THEN 'step_retries' ELSE 'step_fanout_held' END) AS message
                    FROM orcastra.steps s LEFT JOIN live_rows r ON r.step_id = s.id AND r.for_state = s.state
                    WHERE s.state IN ('enqueued', 'in_progress', 'waiting_for_retry') OR (s.state = 'pending' AND s.fanout_of IS NOT NULL)
                    GROUP BY s.id, s.state HAVING count(r.step_id) <> 1
                )
                SELECT s.task_id, v.step_id, s.name AS step_name, v.message
                FROM (SELECT * FROM wrong UNION ALL SELECT * FROM counted) v LEFT JOIN orcastra.steps s ON s.id = v.step_id
                ORDER BY v.step_id LIMIT :limit
                """),
        Invariant(
            name: "single-live-lease",
            rule: "A step never held two leases at once: after a move to in_progress, the step leaves in_progress before it goes in_progress again; and only an in_progress step holds a lease token (and every in_progress step but a workflow step, which runs as its child task, holds one).",
            sql: """
                WITH starts AS (
                    SELECT task_id, step_id, id, lead(id) OVER (PARTITION BY step_id ORDER BY id) AS next_start
                    FROM orcastra.step_transitions WHERE to_state = 'in_progress'
                ), doubled AS (
                    SELECT st.step_id, format('It was claimed again (transition %s) while its claim of transition %s was still live.', st.next_start, st.id) AS message
                    FROM starts st
                    WHERE st.next_start IS NOT NULL
                      AND NOT EXISTS (SELECT 1 FROM orcastra.step_transitions x
                                      WHERE x.task_id = st.task_id AND x.step_id = st.step_id AND x.from_state = 'in_progress'
                                        AND x.id > st.id AND x.id < st.next_start)
                ), stray AS (
                    SELECT s.id AS step_id, format('It is %s but still holds a lease token (owner %s).', s.state, coalesce(s.lease_owner, 'unknown')) AS message
                    FROM orcastra.steps s WHERE s.lease_token IS NOT NULL AND s.state <> 'in_progress'
                    UNION ALL
                    SELECT s.id, 'It is in_progress but holds no lease token, so no worker can report it and only lease expiry frees it.'
                    FROM orcastra.steps s WHERE s.state = 'in_progress' AND (s.lease_token IS NULL OR s.lease_expires_at IS NULL)
                      AND s.workflow IS NULL -- a workflow step runs as its child task, with no lease
                )
                SELECT s.task_id, s.id AS step_id, s.name AS step_name, v.message
                FROM (SELECT * FROM doubled UNION ALL SELECT * FROM stray) v JOIN orcastra.steps s ON s.id = v.step_id
                ORDER BY s.id LIMIT :limit
                """),
        Invariant(
            name: "results-match-completion",
            rule: "Every complete or resolved_manually step has exactly one step_results row, and no other step has one.",
            sql: """
                SELECT s.task_id, s.id AS step_id, s.name AS step_name,
                       CASE WHEN s.state IN \(done) THEN format('It is %s but has no stored result.', s.state)
                            ELSE format('It is %s but has a stored result (written %s): only a completed or resolved step has one.', s.state, r.written_at) END AS message
                FROM orcastra.steps s LEFT JOIN orcastra.step_results r ON r.step_id = s.id
                WHERE (s.state IN \(done)) <> (r.step_id IS NOT NULL)
                ORDER BY s.id LIMIT :limit
                """),
        Invariant(
            name: "task-state-matches-steps",
            rule: "A started task's state is the one its steps imply (some step enqueued or in_progress → in_progress; else one waiting_for_retry → waiting_for_retry; else one in error → error; else complete), a pending task has only pending steps, and a task whose steps are all complete, resolved or skipped is complete (a task failed by its timeout is checked by task-deadline instead); a live task is only reported when nothing in it changed for the grace period (5 s), so a settlement in flight is not mistaken for a stall.",
            sql: """
                WITH counts AS (
                    SELECT s.task_id,
                           count(*) FILTER (WHERE s.state IN ('enqueued', 'in_progress')) AS running,
                           count(*) FILTER (WHERE s.state = 'waiting_for_retry') AS waiting,
                           count(*) FILTER (WHERE s.state = 'error') AS failed,
                           count(*) FILTER (WHERE s.state NOT IN \(finished)) AS unfinished,
                           count(*) FILTER (WHERE s.state <> 'pending') AS not_pending,
                           count(*) AS total
                    FROM orcastra.steps s GROUP BY s.task_id
                ), expected AS (
                    SELECT t.id, t.state, c.total, c.not_pending,
                           CASE WHEN c.running > 0 THEN 'in_progress'
                                WHEN c.waiting > 0 THEN 'waiting_for_retry'
                                WHEN c.failed > 0 THEN 'error'
                                WHEN c.unfinished = 0 THEN 'complete'
                                ELSE 'stalled' END AS implied
                    FROM orcastra.tasks t LEFT JOIN counts c ON c.task_id = t.id
                    -- A task failed by its timeout has cancelled steps, not failed ones: "task-deadline" checks it.
                    WHERE NOT (t.state = 'error' AND t.deadline_at IS NOT NULL AND t.finished_at >= t.deadline_at)
                ), mismatched AS (
                    -- The time of the last change is only looked up for the few tasks that disagree.
                    SELECT e.*,
                           greatest((SELECT max(tt.created_at) FROM orcastra.task_transitions tt WHERE tt.task_id = e.id),
                                    (SELECT max(st.created_at) FROM orcastra.step_transitions st WHERE st.task_id = e.id)) AS last_change
                    FROM expected e
                    WHERE e.total IS NOT NULL AND e.state IN ('in_progress', 'waiting_for_retry', 'error')
                      AND e.implied <> e.state AND e.implied <> 'complete'
                )
                SELECT e.id AS task_id, NULL::bigint AS step_id, NULL::text AS step_name,
                       CASE WHEN e.total IS NULL THEN format('The task is %s but has no steps.', e.state)
                            WHEN e.state = 'pending' THEN format('The task is pending but %s of its steps already left pending.', e.not_pending)
                            WHEN e.implied = 'stalled' THEN format('The task is %s but none of its steps is queued, running, waiting or failed, and some are still pending: nothing will ever run them.', e.state)
                            ELSE format('The task is %s but its steps say %s (unchanged since %s).', e.state, e.implied, e.last_change) END AS message
                FROM (SELECT e.*, NULL::timestamptz AS last_change FROM expected e
                      WHERE e.total IS NULL
                         OR (e.state = 'pending' AND e.not_pending > 0)
                         OR (e.state IN ('in_progress', 'waiting_for_retry', 'error') AND e.implied = 'complete')
                      UNION ALL
                      SELECT m.* FROM mismatched m WHERE m.last_change < clock_timestamp() - :grace_ms * interval '1 millisecond') e
                ORDER BY e.id LIMIT :limit
                """),
        Invariant(
            name: "pending-parents-count",
            rule: "Every step's pending_parents equals the number of its parents that are neither complete, resolved_manually nor skipped, its skipped_parents the number that are skipped, and no pending step of a live task has a count of zero (it would never be enqueued or skipped; an instance of a fan-out held back by max_parallel waits with zero).",
            sql: """
                WITH open_parents AS (
                    SELECT e.child_id, count(*) FILTER (WHERE p.state NOT IN \(finished)) AS open,
                           count(*) FILTER (WHERE p.state = 'skipped') AS skipped
                    FROM orcastra.step_links e JOIN orcastra.steps p ON p.id = e.parent_id
                    GROUP BY e.child_id
                )
                SELECT s.task_id, s.id AS step_id, s.name AS step_name,
                       CASE WHEN s.pending_parents <> coalesce(o.open, 0)
                            THEN format('Its pending_parents is %s but %s of its parents are unfinished.', s.pending_parents, coalesce(o.open, 0))
                            WHEN s.skipped_parents <> coalesce(o.skipped, 0)
                            THEN format('Its skipped_parents is %s but %s of its parents are skipped.', s.skipped_parents, coalesce(o.skipped, 0))
                            ELSE format('It is pending with no unfinished parent in a %s task: nothing will enqueue it.', t.state) END AS message
                FROM orcastra.steps s
                JOIN orcastra.tasks t ON t.id = s.task_id
                LEFT JOIN open_parents o ON o.child_id = s.id
                WHERE s.pending_parents <> coalesce(o.open, 0)
                   OR s.skipped_parents <> coalesce(o.skipped, 0)
                   OR (s.state = 'pending' AND s.pending_parents = 0 AND s.fanout_of IS NULL AND t.state IN ('in_progress', 'waiting_for_retry', 'error'))
                ORDER BY s.id LIMIT :limit
                """),
        Invariant(
            name: "task-deadline",
            rule: "A task failed by its timeout has no step left pending, enqueued, in_progress or waiting_for_retry (the deadline chore cancels them in the transaction that fails the task), and it failed no earlier than its deadline.",
            sql: """
                SELECT t.id AS task_id, s.id AS step_id, s.name AS step_name,
                       CASE WHEN t.finished_at < t.deadline_at
                            THEN format('The task failed by its timeout at %s, before its deadline %s.', t.finished_at, t.deadline_at)
                            ELSE format('The task failed by its timeout but its step %s is still %s.', s.name, s.state) END AS message
                FROM orcastra.tasks t
                LEFT JOIN orcastra.steps s ON s.task_id = t.id AND s.state IN ('pending', 'enqueued', 'in_progress', 'waiting_for_retry')
                WHERE t.state = 'error' AND t.state_reason LIKE 'timed out%'
                  AND (s.id IS NOT NULL OR t.deadline_at IS NULL OR t.finished_at < t.deadline_at)
                ORDER BY t.id, s.id LIMIT :limit
                """),
        Invariant(
            name: "concurrency-key-limit",
            rule: "Tasks with a concurrency key never held more slots than its limit: replaying the task transitions in order, a task holds a slot from a move into in_progress or waiting_for_retry until it leaves both, and no move into a slot made more than the limit hold one at once.",
            sql: """
                WITH moves AS (
                    SELECT tt.task_id, tt.id, t.concurrency_scope, t.concurrency_key, t.concurrency_limit,
                           tt.to_state IN ('in_progress', 'waiting_for_retry') AS live,
                           coalesce(tt.from_state IN ('in_progress', 'waiting_for_retry'), false) AS was_live
                    FROM orcastra.task_transitions tt JOIN orcastra.tasks t ON t.id = tt.task_id
                    WHERE t.concurrency_key IS NOT NULL
                ), edges AS (
                    SELECT m.*, CASE WHEN m.live AND NOT m.was_live THEN 1 ELSE -1 END AS delta
                    FROM moves m WHERE m.live <> m.was_live
                ), holding AS (
                    SELECT e.*, sum(e.delta) OVER (PARTITION BY e.concurrency_scope, e.concurrency_key ORDER BY e.id) AS held
                    FROM edges e
                )
                SELECT h.task_id, NULL::bigint AS step_id, NULL::text AS step_name,
                       format('Its start (transition %s) made %s tasks of %s with concurrency key %s hold a slot at once; the limit is %s.',
                              h.id, h.held, h.concurrency_scope, h.concurrency_key, h.concurrency_limit) AS message
                FROM holding h WHERE h.delta = 1 AND h.held > h.concurrency_limit
                ORDER BY h.id LIMIT :limit
                """),
        Invariant(
            name: "step-concurrency-limit",
            rule: "A step with a concurrency limit never ran more attempts at once than its limit: replaying the step transitions of its scope (template version and step name) in order, the attempts in_progress never exceed the scope's max_running.",
            sql: """
                WITH edges AS (
                    SELECT st.id, s.id AS step_id, s.task_id, s.name, s.limit_scope,
                           CASE WHEN st.to_state = 'in_progress' THEN 1 ELSE -1 END AS delta
                    FROM orcastra.step_transitions st JOIN orcastra.steps s ON s.id = st.step_id
                    WHERE s.limit_scope IS NOT NULL
                      AND (st.to_state = 'in_progress') <> coalesce(st.from_state = 'in_progress', false)
                ), held AS (
                    SELECT e.*, sum(e.delta) OVER (PARTITION BY e.limit_scope ORDER BY e.id) AS running FROM edges e
                )
                SELECT h.task_id, h.step_id, h.name AS step_name,
                       format('Its claim (transition %s) made %s attempts of scope %s run at once; its concurrency is %s.',
                              h.id, h.running, h.limit_scope, l.max_running) AS message
                FROM held h JOIN orcastra.step_limits l ON l.scope = h.limit_scope
                WHERE h.delta = 1 AND h.running > l.max_running
                ORDER BY h.id LIMIT :limit
                """),
        Invariant(
            name: "concurrency-waiting-has-reason",
            rule: "A task waiting for a concurrency slot waits only while its key's slots are all held: the first task in line of a key has fewer free slots than it needs (none).",
            sql: """
                WITH heads AS (
                    SELECT DISTINCT ON (t.concurrency_scope, t.concurrency_key) t.id, t.concurrency_scope, t.concurrency_key, t.concurrency_limit
                    FROM orcastra.tasks t WHERE t.state = 'pending' AND t.waiting_for_slot
                    ORDER BY t.concurrency_scope, t.concurrency_key, t.waiting_since, t.id
                )
                SELECT h.id AS task_id, NULL::bigint AS step_id, NULL::text AS step_name,
                       format('It waits for a slot of key %s, but only %s of %s slots are held: nothing will start it.',
                              h.concurrency_key, c.held, h.concurrency_limit) AS message
                FROM heads h CROSS JOIN LATERAL (
                    SELECT count(*) AS held FROM orcastra.tasks r
                    WHERE r.concurrency_scope = h.concurrency_scope AND r.concurrency_key = h.concurrency_key
                      AND r.state IN ('in_progress', 'waiting_for_retry')) c
                WHERE c.held < h.concurrency_limit
                ORDER BY h.id LIMIT :limit
                """),
        Invariant(
            name: "skipped-vs-triggers",
            rule: "A step was skipped only for a reason that holds — its when: is not true over its input (context and parents' results, re-evaluated now), its trigger all_success saw a skipped parent, or its trigger one_success saw every parent skipped — and a step with a when: that left pending ran only if its when: is true; no step with trigger all_success ran with a skipped parent.",
            sql: """
                WITH judged AS (
                    SELECT s.id, s.task_id, s.name, s.state, s.trigger_rule, s.skipped_parents,
                           (SELECT count(*) FROM orcastra.step_edges e JOIN orcastra.steps p ON p.id = e.parent_id
                            WHERE e.child_id = s.id AND p.fanout_of IS NULL) AS parents,
                           CASE WHEN s.when_condition IS NOT NULL THEN coalesce(jsonb_path_match(
                               jsonb_build_object('context', t.context, 'parents', coalesce(
                                   (SELECT jsonb_object_agg(p.name, coalesce(r.result, 'null'::jsonb))
                                    FROM orcastra.step_edges e JOIN orcastra.steps p ON p.id = e.parent_id
                                    LEFT JOIN orcastra.step_results r ON r.step_id = p.id
                                    WHERE e.child_id = s.id AND p.fanout_of IS NULL), '{}'::jsonb)),
                               s.when_condition, '{}'::jsonb, true), false) END AS condition_true,
                           EXISTS (SELECT 1 FROM orcastra.step_transitions x WHERE x.task_id = s.task_id AND x.step_id = s.id AND x.to_state = 'in_progress') AS ran
                    FROM orcastra.steps s JOIN orcastra.tasks t ON t.id = s.task_id
                    WHERE s.when_condition IS NOT NULL OR s.trigger_rule IS NOT NULL OR s.skipped_parents > 0 OR s.state = 'skipped'
                )
                SELECT j.task_id, j.id AS step_id, j.name AS step_name,
                       CASE WHEN j.state = 'skipped'
                            THEN format('It was skipped, but its when: is true, %s of %s parents were skipped and its trigger is %s.',
                                        j.skipped_parents, j.parents, coalesce(j.trigger_rule, 'all_success'))
                            WHEN j.condition_true = false THEN 'It ran, but its when: is not true over its input.'
                            ELSE format('It ran with trigger all_success although %s of its parents were skipped.', j.skipped_parents) END AS message
                FROM judged j
                WHERE (j.state = 'skipped' AND coalesce(j.condition_true, true)
                       AND NOT (j.trigger_rule IS NULL AND j.skipped_parents > 0)
                       AND NOT (j.trigger_rule IS NOT DISTINCT FROM 'one_success' AND j.skipped_parents = j.parents))
                   OR (j.ran AND j.condition_true = false)
                   OR (j.ran AND j.trigger_rule IS NULL AND j.skipped_parents > 0)
                ORDER BY j.id LIMIT :limit
                """),
        Invariant(
            name: "fan-out-instances",
            rule: "A fan-out step that was fanned out has exactly one instance per item its for_each yields over its input (re-evaluated now), named <step>[i] with index i and that item, each linked to it once (orcastra.step_links); once complete, its result is the list of its instances' results in index order; and while it runs, no more than max_parallel of its instances are enqueued, running or waiting for a retry.",
            sql: """
                WITH groups AS (
                    SELECT g.id, g.task_id, g.name, g.state, g.instances, g.max_parallel,
                           jsonb_path_query_first(jsonb_build_object('context', t.context, 'parents', coalesce(
                               (SELECT jsonb_object_agg(p.name, coalesce(r.result, 'null'::jsonb))
                                FROM orcastra.step_edges e JOIN orcastra.steps p ON p.id = e.parent_id
                                LEFT JOIN orcastra.step_results r ON r.step_id = p.id
                                WHERE e.child_id = g.id AND p.fanout_of IS NULL), '{}'::jsonb)),
                               g.for_each, '{}'::jsonb, true) AS items
                    FROM orcastra.steps g JOIN orcastra.tasks t ON t.id = g.task_id
                    WHERE g.for_each IS NOT NULL AND g.instances IS NOT NULL
                ), counted AS (
                    SELECT g.*,
                           (SELECT count(*) FROM orcastra.steps i WHERE i.fanout_of = g.id) AS rows,
                           (SELECT count(*) FROM orcastra.steps i
                            JOIN orcastra.step_items it ON it.step_id = i.id
                            WHERE i.fanout_of = g.id AND i.name = g.name || '[' || i.item_index || ']'
                              AND it.item = g.items -> i.item_index
                              AND (SELECT count(*) FROM orcastra.step_links e WHERE e.parent_id = i.id) = 1) AS matching,
                           (SELECT count(*) FROM orcastra.steps i WHERE i.fanout_of = g.id
                              AND i.state IN ('enqueued', 'in_progress', 'waiting_for_retry')) AS active,
                           (SELECT r.result = (SELECT coalesce(jsonb_agg(coalesce(ir.result, 'null'::jsonb) ORDER BY i.item_index), '[]'::jsonb)
                                               FROM orcastra.steps i LEFT JOIN orcastra.step_results ir ON ir.step_id = i.id
                                               WHERE i.fanout_of = g.id)
                            FROM orcastra.step_results r WHERE r.step_id = g.id) AS result_matches
                    FROM groups g
                )
                SELECT c.task_id, c.id AS step_id, c.name AS step_name,
                       CASE WHEN jsonb_typeof(c.items) IS DISTINCT FROM 'array' OR c.instances <> jsonb_array_length(c.items)
                                THEN format('It was fanned out into %s instances but its for_each now yields %s.', c.instances,
                                            coalesce(jsonb_typeof(c.items) || ' of ' || CASE WHEN jsonb_typeof(c.items) = 'array' THEN jsonb_array_length(c.items)::text || ' items' ELSE 'no list' END, 'nothing'))
                            WHEN c.rows <> c.instances OR c.matching <> c.instances
                                THEN format('It has %s instance rows, %s of them with their name, item and edge, for %s items.', c.rows, c.matching, c.instances)
                            WHEN c.state = 'complete' AND NOT coalesce(c.result_matches, false)
                                THEN 'It is complete but its result is not the list of its instances'' results in index order.'
                            ELSE format('%s of its instances are enqueued, running or waiting, over its max_parallel of %s.', c.active, c.max_parallel) END AS message
                FROM counted c
                WHERE jsonb_typeof(c.items) IS DISTINCT FROM 'array' OR c.instances <> jsonb_array_length(c.items)
                   OR c.rows <> c.instances OR c.matching <> c.instances
                   OR (c.state = 'complete' AND NOT coalesce(c.result_matches, false))
                   OR (c.state = 'pending' AND c.max_parallel IS NOT NULL AND c.active > c.max_parallel)
                ORDER BY c.id LIMIT :limit
                """),
        Invariant(
            name: "fan-out-failure",
            rule: "A fan-out step that made its instances is in error exactly when none of them is left to run (queued, running, waiting for a retry or held by max_parallel) and at least one failed for good (so that its all_done children could run); an operator's retry or resolve of a failed instance makes it pending again.",
            sql: """
                WITH groups AS (
                    SELECT g.id, g.task_id, g.name, g.state,
                           (SELECT count(*) FROM orcastra.steps i WHERE i.fanout_of = g.id
                              AND i.state IN ('pending', 'enqueued', 'in_progress', 'waiting_for_retry')) AS live,
                           (SELECT count(*) FROM orcastra.steps i WHERE i.fanout_of = g.id AND i.state = 'error') AS failed
                    FROM orcastra.steps g
                    WHERE g.for_each IS NOT NULL AND g.instances IS NOT NULL AND g.state IN ('pending', 'error')
                )
                SELECT g.task_id, g.id AS step_id, g.name AS step_name,
                       CASE WHEN g.state = 'error'
                            THEN format('It is in error with %s instances left to run and %s failed.', g.live, g.failed)
                            ELSE format('It is pending with no instance left to run and %s failed: it should have failed.', g.failed) END AS message
                FROM groups g
                WHERE (g.state = 'error' AND (g.live > 0 OR g.failed = 0))
                   OR (g.state = 'pending' AND g.live = 0 AND g.failed > 0)
                ORDER BY g.id LIMIT :limit
                """),
        Invariant(
            name: "history-owned-and-keyed",
            rule: "Every transition of a task or step that exists carries its task's created_at (the history's partition key, migration 0014), and a step transition belongs to its step's task; a step's history without the step is left only by a pruned task (steps are never deleted alone).",
            sql: """
                SELECT t.id AS task_id, NULL::bigint AS step_id, NULL::text AS step_name,
                       format('Its transition %s is keyed %s, not the task''s created_at %s: it sits in the wrong week''s partition and would be dropped with that week.',
                              tt.id, tt.task_created_at, t.created_at) AS message
                FROM orcastra.task_transitions tt JOIN orcastra.tasks t ON t.id = tt.task_id
                WHERE tt.task_created_at <> t.created_at
                UNION ALL
                SELECT s.task_id, s.id, s.name,
                       CASE WHEN st.task_id <> s.task_id THEN format('Its transition %s names task %s, not its own task.', st.id, st.task_id)
                            ELSE format('Its transition %s is keyed %s, not the task''s created_at %s: it sits in the wrong week''s partition and would be dropped with that week.',
                                        st.id, st.task_created_at, t.created_at) END
                FROM orcastra.step_transitions st JOIN orcastra.steps s ON s.id = st.step_id JOIN orcastra.tasks t ON t.id = s.task_id
                WHERE st.task_id <> s.task_id OR st.task_created_at <> t.created_at
                UNION ALL
                SELECT st.task_id, st.step_id, NULL::text,
                       format('Its task exists but the step does not, though its transition %s does: a step was deleted without its task.', st.id)
                FROM orcastra.step_transitions st JOIN orcastra.tasks t ON t.id = st.task_id
                WHERE NOT EXISTS (SELECT 1 FROM orcastra.steps s WHERE s.id = st.step_id)
                ORDER BY 1, 2 LIMIT :limit
                """),
        Invariant(
            name: "workflow-step-follows-child",
            rule: "A workflow step's state agrees with its child task's: while it is in_progress its child (linked both ways: the step's child_task_id, the child's parent_step_id and parent_task_id) is live; once complete its child is complete or resolved_manually and its result is the child's leaf results by step name; once in error after starting, its child is in error or cancelled; a child is one level deeper than its parent task, never past the depth limit, and a live child's step waits for it. A step or child that changed within the grace period (5 s) is not judged yet: the orchestrator moves a step after its child finishes, in a transaction of its own.",
            sql: """
                WITH workflow_steps AS (
                    SELECT s.id, s.task_id, s.name, s.state, s.child_task_id, s.workflow, c.id AS child, c.state AS child_state,
                           c.parent_step_id, c.parent_task_id, c.workflow_depth AS child_depth, t.workflow_depth AS depth,
                           greatest(c.finished_at, s.finished_at) < now() - :grace_ms * interval '1 millisecond' AS settled
                    FROM orcastra.steps s JOIN orcastra.tasks t ON t.id = s.task_id
                    LEFT JOIN orcastra.tasks c ON c.id = s.child_task_id
                    WHERE s.workflow IS NOT NULL AND s.child_task_id IS NOT NULL
                ), judged AS (
                    SELECT w.task_id, w.id, w.name,
                           CASE WHEN w.child IS NULL THEN NULL -- the child was pruned (retention) before its parent
                                WHEN w.parent_step_id IS DISTINCT FROM w.id OR w.parent_task_id IS DISTINCT FROM w.task_id
                                    THEN format('Its child task %s names step %s of task %s as its parent.', w.child, w.parent_step_id, w.parent_task_id)
                                WHEN w.child_depth <> w.depth + 1 OR w.child_depth > orcastra.workflow_depth_limit()
                                    THEN format('Its child task %s is %s levels deep under a task %s deep (limit %s).', w.child, w.child_depth, w.depth, orcastra.workflow_depth_limit())
                                WHEN w.state = 'in_progress' AND w.child_state NOT IN ('pending', 'in_progress', 'waiting_for_retry')
                                     AND coalesce(w.settled, true)
                                    THEN format('It is in_progress but its child task %s finished (%s) more than the grace period ago.', w.child, w.child_state)
                                WHEN w.state = 'complete' AND w.child_state NOT IN ('complete', 'resolved_manually')
                                    THEN format('It is complete but its child task %s is %s.', w.child, w.child_state)
                                WHEN w.state = 'complete' AND (SELECT r.result FROM orcastra.step_results r WHERE r.step_id = w.id)
                                                               IS DISTINCT FROM orcastra.subworkflow_result(w.child)
                                    THEN format('It is complete but its result is not its child task %s''s leaf results.', w.child)
                                WHEN w.state = 'error' AND w.child_state NOT IN ('error', 'cancelled')
                                    THEN format('It is in error but its child task %s is %s.', w.child, w.child_state)
                           END AS message
                    FROM workflow_steps w
                    UNION ALL
                    -- Live children nobody waits for (the orchestrator cancels them: cancel_orphaned_subworkflows).
                    SELECT c.id, s.id, s.name,
                           format('Its child task %s is %s, but the step is %s%s.', c.id, c.state, s.state,
                                  CASE WHEN s.child_task_id IS DISTINCT FROM c.id THEN ' and waits for task ' || coalesce(s.child_task_id::text, 'none') ELSE '' END)
                    FROM orcastra.tasks c JOIN orcastra.steps s ON s.id = c.parent_step_id
                    WHERE c.parent_step_id IS NOT NULL AND c.state IN ('pending', 'in_progress', 'waiting_for_retry')
                      AND (s.state <> 'in_progress' OR s.child_task_id IS DISTINCT FROM c.id)
                      AND coalesce(s.finished_at, c.created_at) < now() - :grace_ms * interval '1 millisecond'
                )
                SELECT j.task_id, j.id AS step_id, j.name AS step_name, j.message
                FROM judged j WHERE j.message IS NOT NULL
                ORDER BY j.id LIMIT :limit
                """),
        Invariant(
            name: "owned-rows-have-owners",
            rule: "Every step's task exists, and every result, fan-out item and edge refers to steps that exist (statement-level triggers keep these references since migration 0018, not foreign keys).",
            sql: """
                SELECT s.task_id, s.id AS step_id, s.name AS step_name,
                       format('Its task %s does not exist: the step was left behind when the task was deleted.', s.task_id) AS message
                FROM orcastra.steps s WHERE NOT EXISTS (SELECT 1 FROM orcastra.tasks t WHERE t.id = s.task_id)
                UNION ALL
                SELECT NULL::uuid, r.step_id, NULL::text, format('A result is stored for step %s, which does not exist.', r.step_id)
                FROM orcastra.step_results r WHERE NOT EXISTS (SELECT 1 FROM orcastra.steps s WHERE s.id = r.step_id)
                UNION ALL
                SELECT NULL::uuid, i.step_id, NULL::text, format('A fan-out item is stored for step %s, which does not exist.', i.step_id)
                FROM orcastra.step_items i WHERE NOT EXISTS (SELECT 1 FROM orcastra.steps s WHERE s.id = i.step_id)
                UNION ALL
                SELECT NULL::uuid, e.child_id, NULL::text, format('The edge %s → %s refers to a step that does not exist.', e.parent_id, e.child_id)
                FROM orcastra.step_edges e
                WHERE NOT EXISTS (SELECT 1 FROM orcastra.steps s WHERE s.id = e.parent_id)
                   OR NOT EXISTS (SELECT 1 FROM orcastra.steps s WHERE s.id = e.child_id)
                ORDER BY 2 LIMIT :limit
                """),
    ]
}
