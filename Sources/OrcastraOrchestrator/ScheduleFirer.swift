import Foundation
import Logging
import OrcastraPostgres
import OrcastraSchedules
import OrcastraMetrics
import OrcastraTemplates

/// The orchestrator's schedule chore: fires the occurrences of due schedules, exactly once each.
///
/// One transaction per batch: lock due schedules (`FOR UPDATE SKIP LOCKED`, so another
/// orchestrator takes other rows or none), work out each one's occurrences and next time from its
/// cron expression (``ScheduleFiring``), check each task's context against the template's input
/// schema, and let `orcastra.fire_schedules` create the tasks and move `next_fire_at` — all or
/// nothing. Times are the database's (`now()` of that transaction), never this machine's clock.
struct ScheduleFirer {
    /// What one batch did, for the log and the round's loop.
    struct Round {
        var schedules = 0
        var created = 0
        var skipped = 0
        var failed = 0
    }

    private var expressions: [String: CronExpression] = [:]
    private var zones: [String: TimeZone] = [:]
    /// Input schemas and deprecation by template id. A registered version never changes; only
    /// deprecation may come later, so those entries are read again after a minute.
    private var templates: [Int64: (schema: JSONSchema?, deprecated: String?, read: ContinuousClock.Instant)] = [:]

    /// A due schedule this transaction has locked.
    private struct Due {
        var id: Int64
        var label: String
        var templateID: Int64?
        var pinned: Bool
        var row: PostgresRow
    }

    /// Fires up to `limit` due schedules in one transaction. Should `orcastra.fire_schedules` fail
    /// for the batch (what the checks before it did not foresee), each schedule of the batch is
    /// fired in a transaction of its own, and the one that fails is recorded as failed with the
    /// database's error: one bad schedule never holds up the others or retries forever.
    mutating func fireDue(on connection: PostgresConnection, limit: Int, logger: Logger) async throws -> Round {
        var batch: [Int64] = []
        do {
            return try await transaction(on: connection) { firer in
                let due = try await firer.lockDue(on: connection, ids: nil, limit: limit)
                batch = due.map(\.id)
                return try await firer.fire(due, on: connection, forcedError: nil, logger: logger)
            }
        } catch let error as PostgresError where !connection.isBroken && !batch.isEmpty {
            logger.warning("firing a batch of schedules failed; firing them one by one", metadata: ["error": "\(error)"])
        }
        var round = Round()
        for id in batch {
            let one: Round
            do {
                one = try await transaction(on: connection) { firer in
                    try await firer.fire(try await firer.lockDue(on: connection, ids: [id], limit: 1), on: connection, forcedError: nil, logger: logger)
                }
            } catch let error as PostgresError where !connection.isBroken {
                one = try await transaction(on: connection) { firer in
                    try await firer.fire(try await firer.lockDue(on: connection, ids: [id], limit: 1), on: connection,
                                         forcedError: "the database refused the task: \(Self.reason(error))", logger: logger)
                }
            }
            round.schedules += one.schedules; round.created += one.created; round.skipped += one.skipped; round.failed += one.failed
        }
        return round
    }

    /// The server's own words (SQLSTATE and message), without the statement.
    static func reason(_ error: PostgresError) -> String {
        if case .server(let server) = error { return "\(server.message) (SQLSTATE \(server.sqlState))" }
        return "\(error)"
    }

    private mutating func transaction(on connection: PostgresConnection, _ body: (inout ScheduleFirer) async throws -> Round) async throws -> Round {
        try await connection.execute("BEGIN")
        do {
            var firer = self
            let round = try await body(&firer)
            try await connection.execute("COMMIT")
            self = firer
            return round
        } catch {
            if !connection.isBroken { _ = try? await connection.execute("ROLLBACK") }
            throw error
        }
    }

    /// Locks due schedules (all due ones up to `limit`, or those of `ids` that are still due).
    private mutating func lockDue(on connection: PostgresConnection, ids: [Int64]?, limit: Int) async throws -> [Due] {
        let only: SQL = ids.map { "AND s.id = ANY(\($0)::bigint[])" } ?? ""
        let rows = try await connection.query("""
            SELECT s.id, s.namespace, s.name, s.template_name, s.template_version, s.cron, s.timezone, s.end_at,
                   s.catch_up, s.next_fire_at, s.context::text AS context, now() AS now,
                   orcastra.resolve_template(s.namespace, s.template_name, s.template_version) AS template_id
            FROM orcastra.schedules s
            WHERE NOT s.paused AND s.next_fire_at <= now() \(only)
            ORDER BY s.id LIMIT \(limit) FOR UPDATE SKIP LOCKED
            """)
        let due = try rows.rows.map { row in
            Due(id: try row.decode("id"),
                label: "\(try row.decode("namespace", as: String.self))/\(try row.decode("name", as: String.self))",
                templateID: try row.decode("template_id"), pinned: try row.decode("template_version", as: String?.self) != nil, row: row)
        }
        try await loadTemplates(due.compactMap(\.templateID), on: connection)
        return due
    }

    /// Plans each schedule's occurrences and hands them to `orcastra.fire_schedules`; with
    /// `forcedError`, records every occurrence as failed with it instead.
    private mutating func fire(_ due: [Due], on connection: PostgresConnection, forcedError: String?, logger: Logger) async throws -> Round {
        var round = Round()
        guard !due.isEmpty else { return round }
        round.schedules = due.count
        var ids: [Int64] = [], nexts: [Date?] = []
        var fireIDs: [Int64] = [], fireTimes: [Date] = [], fireTemplates: [Int64?] = [], fireErrors: [String?] = []

        for schedule in due {
            let row = schedule.row
            let now: Date = try row.decode("now")
            let nextFireAt: Date = try row.decode("next_fire_at")
            ids.append(schedule.id)
            guard let cron = expression(try row.decode("cron")), let zone = zone(try row.decode("timezone")) else {
                // Only a hand-edited row gets here: the client checks both. Stop it rather than retry forever.
                nexts.append(nil)
                fireIDs.append(schedule.id); fireTimes.append(nextFireAt); fireTemplates.append(nil)
                fireErrors.append("the schedule's cron expression or time zone is not valid; fix it with `orcastra schedule apply` (it will not fire again until then)")
                continue
            }
            let catchUp = CatchUpPolicy(rawValue: try row.decode("catch_up")) ?? .latest
            let plan = ScheduleFiring.plan(cron, in: zone, nextFireAt: nextFireAt, now: now,
                                           end: try row.decode("end_at", as: Date?.self), catchUp: catchUp)
            nexts.append(plan.nextFireAt)
            if plan.dropped > 0 {
                let count = plan.manyDropped ? "more than \(plan.dropped)" : "\(plan.dropped)"
                let level: Logger.Level = catchUp == .all ? .warning : .info
                logger.log(level: level, "schedule \(schedule.label): \(count) missed occurrence(s) make no task (catch_up: \(catchUp.rawValue)\(catchUp == .all ? ", at most \(ScheduleFiring.catchUpLimit) are caught up" : ""))")
            }
            let context = try JSONValue(parsing: try row.decode("context", as: String.self))
            for occurrence in plan.occurrences {
                fireIDs.append(schedule.id)
                fireTimes.append(occurrence)
                fireTemplates.append(schedule.templateID)
                fireErrors.append(forcedError ?? problem(schedule, context: context, occurrence: occurrence))
            }
        }

        let fired = try await connection.query("""
            SELECT schedule_id, scheduled_for, outcome, task_id, detail
            FROM orcastra.fire_schedules(\(ids)::bigint[], \(nexts)::timestamptz[], \(fireIDs)::bigint[],
                                         \(fireTimes)::timestamptz[], \(fireTemplates)::bigint[], \(fireErrors)::text[])
            """)
        let now: Date? = try due.first?.row.decode("now")
        for row in fired.rows {
            switch try row.decode("outcome", as: String.self) {
            case "created":
                round.created += 1
                if let now, let scheduledFor = try? row.decode("scheduled_for", as: Date.self) {
                    OrcastraMetric.scheduleLateness.observe(seconds: now.timeIntervalSince(scheduledFor))
                }
            case "existed": round.created += 1
            case "skipped", "superseded": round.skipped += 1
            default:
                round.failed += 1
                let schedule = try row.decode("schedule_id", as: Int64.self)
                let occurrence = ScheduleContext.instantText(try row.decode("scheduled_for", as: Date.self))
                let detail = try row.decode("detail", as: String?.self) ?? ""
                logger.warning("a schedule's occurrence made no task", metadata: [
                    "schedule_id": "\(schedule)", "scheduled_for": "\(occurrence)", "error": "\(detail)"])
            }
        }
        return round
    }

    /// Why an occurrence cannot make a task, or nil: no template to run, a deprecated pinned
    /// version, or a context the template's input schema refuses.
    private func problem(_ schedule: Due, context: JSONValue, occurrence: Date) -> String? {
        guard let templateID = schedule.templateID, let template = templates[templateID] else {
            let version = (try? schedule.row.decode("template_version", as: String?.self)).flatMap { $0 }
            let name = (try? schedule.row.decode("template_name", as: String.self)) ?? "?"
            let namespace = (try? schedule.row.decode("namespace", as: String.self)) ?? "?"
            return "no template \(namespace)/\(name)\(version.map { "@\($0)" } ?? "") can run: it is not registered\(version == nil ? ", or has no release that is not deprecated" : "")"
        }
        if schedule.pinned, let deprecated = template.deprecated {
            return "\(deprecated); pin another version (`orcastra schedule apply`) or undo the deprecation"
        }
        guard let schema = template.schema else { return nil }
        let violations = schema.validate(ScheduleContext.context(context, scheduledFor: occurrence))
        guard !violations.isEmpty else { return nil }
        return "the context does not match the template's input schema: " + violations.map(\.description).joined(separator: "; ")
    }

    private mutating func loadTemplates(_ ids: [Int64], on connection: PostgresConnection) async throws {
        let stale = ContinuousClock.now - .seconds(60)
        let missing = Array(Set(ids.filter { templates[$0].map { $0.read < stale } ?? true }))
        guard !missing.isEmpty else { return }
        let rows = try await connection.query("""
            SELECT id, definition::text AS definition,
                   CASE WHEN deprecated_at IS NOT NULL
                        THEN namespace || '/' || name || '@' || version || ' is deprecated' || coalesce(': ' || deprecation_reason, '') END AS deprecated
            FROM orcastra.templates WHERE id = ANY(\(missing)::bigint[])
            """)
        for row in rows.rows {
            let template = try WorkflowTemplate(normalizedJSON: try row.decode("definition", as: String.self))
            templates[try row.decode("id", as: Int64.self)] = (template.inputSchema, try row.decode("deprecated"), .now)
        }
    }

    private mutating func expression(_ text: String) -> CronExpression? {
        if let known = expressions[text] { return known }
        guard let parsed = try? CronExpression(parsing: text) else { return nil }
        expressions[text] = parsed
        return parsed
    }

    private mutating func zone(_ name: String) -> TimeZone? {
        if let known = zones[name] { return known }
        guard let zone = try? ScheduleTimeZone.named(name) else { return nil }
        zones[name] = zone
        return zone
    }
}
