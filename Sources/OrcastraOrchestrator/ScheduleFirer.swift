import Foundation
import Logging
import OrcastraPostgres
import OrcastraSchedules
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
    /// Input schemas by template id: a registered version never changes, so they never go stale.
    private var schemas: [Int64: JSONSchema?] = [:]

    /// Fires up to `limit` due schedules in one transaction.
    mutating func fireDue(on connection: PostgresConnection, limit: Int, logger: Logger) async throws -> Round {
        try await connection.execute("BEGIN")
        do {
            let round = try await fireLocked(on: connection, limit: limit, logger: logger)
            try await connection.execute("COMMIT")
            return round
        } catch {
            if !connection.isBroken { _ = try? await connection.execute("ROLLBACK") }
            throw error
        }
    }

    private mutating func fireLocked(on connection: PostgresConnection, limit: Int, logger: Logger) async throws -> Round {
        let due = try await connection.query("""
            SELECT s.id, s.namespace, s.name, s.template_name, s.template_version, s.cron, s.timezone, s.end_at,
                   s.catch_up, s.next_fire_at, s.context::text AS context, now() AS now,
                   orcastra.resolve_template(s.namespace, s.template_name, s.template_version) AS template_id
            FROM orcastra.schedules s
            WHERE NOT s.paused AND s.next_fire_at <= now()
            ORDER BY s.id LIMIT \(limit) FOR UPDATE SKIP LOCKED
            """)
        var round = Round()
        guard !due.rows.isEmpty else { return round }
        round.schedules = due.rows.count

        var ids: [Int64] = [], nexts: [Date?] = []
        var fireIDs: [Int64] = [], fireTimes: [Date] = [], fireTemplates: [Int64?] = [], fireErrors: [String?] = []
        try await loadSchemas(for: due.rows.compactMap { try? $0.decode("template_id", as: Int64?.self) }, on: connection)

        for row in due.rows {
            let id: Int64 = try row.decode("id")
            let label = "\(try row.decode("namespace", as: String.self))/\(try row.decode("name", as: String.self))"
            let now: Date = try row.decode("now")
            let nextFireAt: Date = try row.decode("next_fire_at")
            ids.append(id)
            guard let cron = expression(try row.decode("cron")), let zone = zone(try row.decode("timezone")) else {
                // Only a hand-edited row gets here: the client checks both. Stop it rather than retry forever.
                nexts.append(nil)
                fireIDs.append(id); fireTimes.append(nextFireAt); fireTemplates.append(nil)
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
                logger.log(level: level, "schedule \(label): \(count) missed occurrence(s) make no task (catch_up: \(catchUp.rawValue)\(catchUp == .all ? ", at most \(ScheduleFiring.catchUpLimit) are caught up" : ""))")
            }
            let templateID = try row.decode("template_id", as: Int64?.self)
            let context = try JSONValue(parsing: try row.decode("context", as: String.self))
            for occurrence in plan.occurrences {
                fireIDs.append(id)
                fireTimes.append(occurrence)
                fireTemplates.append(templateID)
                fireErrors.append(problem(templateID: templateID, row: row, context: context, occurrence: occurrence))
            }
        }

        let fired = try await connection.query("""
            SELECT schedule_id, scheduled_for, outcome, task_id, detail
            FROM orcastra.fire_schedules(\(ids)::bigint[], \(nexts)::timestamptz[], \(fireIDs)::bigint[],
                                         \(fireTimes)::timestamptz[], \(fireTemplates)::bigint[], \(fireErrors)::text[])
            """)
        for row in fired.rows {
            switch try row.decode("outcome", as: String.self) {
            case "created", "existed": round.created += 1
            case "skipped": round.skipped += 1
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

    /// Why an occurrence cannot make a task, or nil: no template to run, or a context its input schema refuses.
    private func problem(templateID: Int64?, row: PostgresRow, context: JSONValue, occurrence: Date) -> String? {
        guard let templateID else {
            let name = (try? row.decode("template_name", as: String.self)) ?? "?"
            let namespace = (try? row.decode("namespace", as: String.self)) ?? "?"
            let version = (try? row.decode("template_version", as: String?.self)).flatMap { $0 }
            return "no template \(namespace)/\(name)\(version.map { "@\($0)" } ?? "") can run: it is not registered\(version == nil ? ", or has no release that is not deprecated" : "")"
        }
        guard let schema = schemas[templateID] ?? nil else { return nil }
        let violations = schema.validate(ScheduleContext.context(context, scheduledFor: occurrence))
        guard !violations.isEmpty else { return nil }
        return "the context does not match the template's input schema: " + violations.map(\.description).joined(separator: "; ")
    }

    private mutating func loadSchemas(for ids: [Int64], on connection: PostgresConnection) async throws {
        let missing = Array(Set(ids.filter { schemas[$0] == nil }))
        guard !missing.isEmpty else { return }
        let rows = try await connection.query("SELECT id, definition::text AS definition FROM orcastra.templates WHERE id = ANY(\(missing)::bigint[])")
        for row in rows.rows {
            let template = try WorkflowTemplate(normalizedJSON: try row.decode("definition", as: String.self))
            schemas[try row.decode("id", as: Int64.self)] = .some(template.inputSchema)
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
