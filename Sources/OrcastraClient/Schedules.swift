import Foundation
import OrcastraPostgres
import OrcastraSchedules
import OrcastraStateMachines
import OrcastraStore
import OrcastraTemplates

/// A schedule as stored (`orcastra.schedules`), with what `orcastra schedule list` shows of its
/// last task.
public struct ScheduleInfo: Sendable, Hashable, Codable {
    public var id: Int64
    public var namespace: String
    public var name: String
    /// `namespace/name`, or `namespace/name@version` when pinned.
    public var template: String
    public var cron: String
    public var timezone: String
    @NullEncoded public var startAt: Date?
    @NullEncoded public var endAt: Date?
    public var context: JSONValue
    public var priority: Int
    public var catchUp: String
    public var overlap: String
    public var paused: Bool
    /// The next occurrence not yet fired; nil when none is left (past `end`, or never matches).
    @NullEncoded public var nextFireAt: Date?
    @NullEncoded public var lastFireAt: Date?
    @NullEncoded public var lastTaskID: String?
    /// The last task's state now, if it still exists.
    @NullEncoded public var lastTaskState: String?
    /// `created`, `skipped` (overlap: skip) or `failed` (see `lastError`).
    @NullEncoded public var lastOutcome: String?
    @NullEncoded public var lastError: String?
    public var firedCount: Int
    public var skippedCount: Int
    public var createdAt: Date
    public var updatedAt: Date

    /// `namespace/name`: how commands name it.
    public var qualifiedName: String { "\(namespace)/\(name)" }

    /// For values read elsewhere (the HTTP API's client).
    public init(id: Int64, namespace: String, name: String, template: String, cron: String, timezone: String, startAt: Date?,
                endAt: Date?, context: JSONValue, priority: Int, catchUp: String, overlap: String, paused: Bool, nextFireAt: Date?,
                lastFireAt: Date?, lastTaskID: String?, lastTaskState: String?, lastOutcome: String?, lastError: String?,
                firedCount: Int, skippedCount: Int, createdAt: Date, updatedAt: Date) {
        self.id = id
        self.namespace = namespace
        self.name = name
        self.template = template
        self.cron = cron
        self.timezone = timezone
        self.startAt = startAt
        self.endAt = endAt
        self.context = context
        self.priority = priority
        self.catchUp = catchUp
        self.overlap = overlap
        self.paused = paused
        self.nextFireAt = nextFireAt
        self.lastFireAt = lastFireAt
        self.lastTaskID = lastTaskID
        self.lastTaskState = lastTaskState
        self.lastOutcome = lastOutcome
        self.lastError = lastError
        self.firedCount = firedCount
        self.skippedCount = skippedCount
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, namespace, name, template, cron, timezone, context, priority, paused
        case startAt = "start_at", endAt = "end_at", catchUp = "catch_up", overlap
        case nextFireAt = "next_fire_at", lastFireAt = "last_fire_at", lastTaskID = "last_task_id"
        case lastTaskState = "last_task_state", lastOutcome = "last_outcome", lastError = "last_error"
        case firedCount = "fired_count", skippedCount = "skipped_count", createdAt = "created_at", updatedAt = "updated_at"
    }
}

/// What `applySchedule` did to one schedule.
public enum ScheduleChange: Sendable, Hashable {
    case created
    /// The keys (as in a schedule file) whose values changed.
    case updated([String])
    case unchanged
}

/// Why a schedule command was refused.
public enum ScheduleError: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound(String, suggestions: [String])
    /// A bare name that several namespaces use.
    case ambiguous(String, candidates: [String])
    case alreadyExists(String)
    /// The database was migrated by an older Orcastra (no `orcastra.schedules`).
    case schedulesMissing

    public var description: String {
        switch self {
        case .notFound(let name, let suggestions):
            let hint = suggestions.isEmpty ? "`orcastra schedule list` shows the schedules there are."
                : "Did you mean \(suggestions.joined(separator: ", "))?"
            return "No schedule \(name). \(hint)"
        case .ambiguous(let name, let candidates):
            return "Several namespaces have a schedule \(name): \(candidates.joined(separator: ", ")). Name it with its namespace, like \(candidates[0])."
        case .alreadyExists(let name):
            return "A schedule \(name) exists already. Change it with `orcastra schedule apply FILE`, or delete it first with `orcastra schedule delete \(name)`."
        case .schedulesMissing:
            return "This database has no schedules: it was migrated by an older Orcastra. Run `orcastra migrate`."
        }
    }
}

/// A schedule's name as commands take it: `namespace/name`, or `name` alone when only one
/// namespace has a schedule of that name.
public struct ScheduleName: Sendable, Hashable, CustomStringConvertible {
    public var namespace: String?
    public var name: String

    public init(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        if parts.count == 2 { namespace = parts[0]; name = parts[1] } else { namespace = nil; name = text }
    }

    public var description: String { namespace.map { "\($0)/\(name)" } ?? name }

    /// The schedule this name names among `schedules` (every schedule there is); the same
    /// refusals as `OrcastraClient.schedule(_:)`, for callers that hold the list (the HTTP API's client).
    public func pick(from schedules: [ScheduleInfo]) throws(ScheduleError) -> ScheduleInfo {
        let found = schedules.filter { $0.name == name && (namespace == nil || $0.namespace == namespace) }
            .sorted { $0.namespace < $1.namespace }
        if found.count > 1 { throw ScheduleError.ambiguous(description, candidates: found.map(\.qualifiedName)) }
        guard let schedule = found.first else { throw notFound(among: schedules) }
        return schedule
    }

    /// The refusal of a name no schedule has, with up to three close ones among `schedules`.
    func notFound(among schedules: [ScheduleInfo]) -> ScheduleError {
        let suggestions = schedules.filter { schedule in
            EditDistance.distance(schedule.name, name) <= max(2, name.count / 3)
                && (namespace.map { EditDistance.distance(schedule.namespace, $0) <= 2 } ?? true)
        }.map(\.qualifiedName)
        return .notFound(description, suggestions: Array(suggestions.prefix(3)))
    }
}

// Schedules (docs/schedules.md): created and changed here, fired by the orchestrators.
extension OrcastraClient {
    static let scheduleColumns: SQL = """
        s.id, s.namespace, s.name, s.template_name, s.template_version, s.cron, s.timezone, s.start_at, s.end_at,
        s.context::text AS context, s.priority, s.catch_up, s.overlap, s.paused, s.next_fire_at, s.last_fire_at,
        s.last_task_id, t.state AS last_task_state, s.last_outcome, s.last_error, s.fired_count, s.skipped_count,
        s.created_at, s.updated_at
        FROM orcastra.schedules s LEFT JOIN orcastra.tasks t ON t.id = s.last_task_id
        """

    /// Every schedule, or one namespace's, by namespace and name.
    public func schedules(namespace: String? = nil) async throws -> [ScheduleInfo] {
        let filter: SQL = namespace.map { "WHERE s.namespace = \($0)" } ?? ""
        let rows = try await schedulesQuery("SELECT \(Self.scheduleColumns) \(filter) ORDER BY s.namespace, s.name")
        return try rows.rows.map(Self.scheduleInfo)
    }

    /// One schedule by name.
    ///
    /// - Throws: `ScheduleError.notFound` (with close names) or `.ambiguous`.
    public func schedule(_ name: ScheduleName) async throws -> ScheduleInfo {
        let filter: SQL = name.namespace.map { "WHERE s.namespace = \($0) AND s.name = \(name.name)" } ?? "WHERE s.name = \(name.name)"
        let rows = try await schedulesQuery("SELECT \(Self.scheduleColumns) \(filter) ORDER BY s.namespace")
        let found = try rows.rows.map(Self.scheduleInfo)
        if found.count > 1 { throw ScheduleError.ambiguous(name.description, candidates: found.map(\.qualifiedName)) }
        guard let schedule = found.first else {
            throw name.notFound(among: try await schedules())
        }
        return schedule
    }

    /// Creates a schedule; its first occurrence is the first one after now (and not before its
    /// start). The template must be registered, and the context must match its input schema
    /// (with `scheduled_for` added, as each task gets it).
    ///
    /// - Throws: `ScheduleError.alreadyExists`, `StoreError.templateNotFound`, `StoreError.contextInvalid`.
    @discardableResult
    public func createSchedule(_ definition: ScheduleDefinition) async throws -> ScheduleInfo {
        try await insertSchedule(definition, reference: try await checkTemplate(of: definition))
    }

    /// Stores a checked definition; its first occurrence is the first after now and its start.
    private func insertSchedule(_ definition: ScheduleDefinition, reference: TemplateReference) async throws -> ScheduleInfo {
        let now = try await databaseNow()
        let next = ScheduleFiring.firstFireTime(definition.cron, in: definition.timeZone, start: definition.startAt,
                                                end: definition.endAt, now: now)
        let rows = try await schedulesQuery("""
            INSERT INTO orcastra.schedules (namespace, name, template_name, template_version, cron, timezone, start_at, end_at,
                                            context, priority, catch_up, overlap, paused, next_fire_at)
            VALUES (\(reference.namespace), \(definition.name), \(reference.name), \(reference.version?.description)::text,
                    \(definition.cron.source), \(ScheduleTimeZone.name(of: definition.timeZone)), \(definition.startAt)::timestamptz,
                    \(definition.endAt)::timestamptz, \(JSONText(definition.context.jsonText))::jsonb, \(definition.priority)::integer,
                    \(definition.catchUp.rawValue), \(definition.overlap.rawValue), \(definition.paused), \(next)::timestamptz)
            ON CONFLICT (namespace, name) DO NOTHING
            RETURNING id
            """)
        guard !rows.rows.isEmpty else { throw ScheduleError.alreadyExists("\(reference.namespace)/\(definition.name)") }
        return try await schedule(ScheduleName("\(reference.namespace)/\(definition.name)"))
    }

    /// Makes the stored schedule match `definition`: creates it, changes what differs, or leaves it.
    /// A changed cron expression, time zone, start or end, or a resumed schedule, moves the next
    /// occurrence to the first one after now; other changes keep it.
    public func applySchedule(_ definition: ScheduleDefinition) async throws -> (ScheduleInfo, ScheduleChange) {
        let reference = try await checkTemplate(of: definition)
        let qualified = ScheduleName("\(reference.namespace)/\(definition.name)")
        let existing: ScheduleInfo
        do { existing = try await schedule(qualified) } catch ScheduleError.notFound {
            do { return (try await insertSchedule(definition, reference: reference), .created) } catch ScheduleError.alreadyExists {
                existing = try await schedule(qualified)   // created meanwhile by another apply
            }
        }
        let changed = Self.changedKeys(definition, reference: reference, existing)
        guard !changed.isEmpty else { return (existing, .unchanged) }
        let timing = Set(["cron", "timezone", "start", "end"])
        let moveNext = !Set(changed).isDisjoint(with: timing) || (existing.paused && !definition.paused)
        let now = try await databaseNow()
        let next = moveNext
            ? ScheduleFiring.firstFireTime(definition.cron, in: definition.timeZone, start: definition.startAt, end: definition.endAt, now: now)
            : existing.nextFireAt
        _ = try await schedulesQuery("""
            UPDATE orcastra.schedules
            SET template_version = \(reference.version?.description)::text, cron = \(definition.cron.source),
                timezone = \(ScheduleTimeZone.name(of: definition.timeZone)), start_at = \(definition.startAt)::timestamptz,
                end_at = \(definition.endAt)::timestamptz, context = \(JSONText(definition.context.jsonText))::jsonb,
                priority = \(definition.priority)::integer, catch_up = \(definition.catchUp.rawValue),
                overlap = \(definition.overlap.rawValue), paused = \(definition.paused),
                next_fire_at = \(next)::timestamptz, updated_at = now()
            WHERE id = \(existing.id)
            """)
        return (try await schedule(qualified), .updated(changed))
    }

    /// Pauses a schedule: nothing fires until it is resumed. Occurrences while paused are not caught up.
    @discardableResult
    public func pauseSchedule(_ name: ScheduleName) async throws -> ScheduleInfo {
        let schedule = try await schedule(name)
        _ = try await schedulesQuery("UPDATE orcastra.schedules SET paused = true, updated_at = now() WHERE id = \(schedule.id)")
        return try await self.schedule(ScheduleName(schedule.qualifiedName))
    }

    /// Resumes a paused schedule from now: its next occurrence is the first one after now.
    @discardableResult
    public func resumeSchedule(_ name: ScheduleName) async throws -> ScheduleInfo {
        let schedule = try await schedule(name)
        guard schedule.paused else { return schedule }
        let cron = try CronExpression(parsing: schedule.cron)
        let zone = try ScheduleTimeZone.named(schedule.timezone)
        let next = ScheduleFiring.firstFireTime(cron, in: zone, start: schedule.startAt, end: schedule.endAt, now: try await databaseNow())
        _ = try await schedulesQuery("""
            UPDATE orcastra.schedules SET paused = false, next_fire_at = \(next)::timestamptz, updated_at = now()
            WHERE id = \(schedule.id)
            """)
        return try await self.schedule(ScheduleName(schedule.qualifiedName))
    }

    /// Deletes a schedule. The tasks it made stay.
    @discardableResult
    public func deleteSchedule(_ name: ScheduleName) async throws -> ScheduleInfo {
        let schedule = try await schedule(name)
        _ = try await schedulesQuery("DELETE FROM orcastra.schedules WHERE id = \(schedule.id)")
        return schedule
    }

    /// Runs a schedule once now, whatever its cron expression, pause or overlap policy say; its
    /// next occurrence stays. The task's `scheduled_for` is now.
    public func triggerSchedule(_ name: ScheduleName) async throws -> (task: UUID, scheduledFor: Date) {
        let schedule = try await schedule(name)
        let reference = try TemplateReference(parsing: schedule.template)
        let stored = try await TemplateRegistry(pool: pool).find(reference)
        if let schema = stored.template.inputSchema {
            let violations = schema.validate(ScheduleContext.context(schedule.context, scheduledFor: Date()))
            if !violations.isEmpty { throw StoreError.contextInvalid(template: stored.template.reference, violations: violations) }
        }
        let rows = try await schedulesQuery("SELECT task_id, scheduled_for FROM orcastra.trigger_schedule(\(schedule.id), \(stored.id))")
        guard let row = rows.first else { throw ScheduleError.notFound(name.description, suggestions: []) }
        return (try row.decode("task_id"), try row.decode("scheduled_for"))
    }

    /// What `applySchedule` would do, without doing it.
    public func scheduleChange(_ definition: ScheduleDefinition) async throws -> ScheduleChange {
        let reference = try await checkTemplate(of: definition)
        let existing: ScheduleInfo
        do { existing = try await schedule(ScheduleName("\(reference.namespace)/\(definition.name)")) } catch ScheduleError.notFound {
            return .created
        }
        let changed = Self.changedKeys(definition, reference: reference, existing)
        return changed.isEmpty ? .unchanged : .updated(changed)
    }

    /// Checks what creating or applying `definition` checks, writing nothing: the template is
    /// registered (an unpinned one has a version to take) and the context matches its input schema.
    public func checkSchedule(_ definition: ScheduleDefinition) async throws {
        _ = try await checkTemplate(of: definition)
    }

    // MARK: - Helpers

    static func changedKeys(_ definition: ScheduleDefinition, reference: TemplateReference, _ existing: ScheduleInfo) -> [String] {
        let wanted = fields(of: definition, reference: reference)
        let stored = fields(of: existing)
        return wanted.keys.sorted().filter { wanted[$0] != stored[$0] }
    }

    /// The template must be registered now (an unpinned reference must have a version to take),
    /// and the context must match its input schema as each task will get it.
    private func checkTemplate(of definition: ScheduleDefinition) async throws -> TemplateReference {
        let reference = try TemplateReference(parsing: definition.template)
        let stored = try await TemplateRegistry(pool: pool).find(reference)
        if let schema = stored.template.inputSchema {
            let sample = ScheduleContext.context(definition.context, scheduledFor: Date())
            let violations = schema.validate(sample)
            if !violations.isEmpty { throw StoreError.contextInvalid(template: stored.template.reference, violations: violations) }
        }
        return reference
    }

    private func databaseNow() async throws -> Date {
        try await pool.query("SELECT clock_timestamp() AS now").first!.decode("now")
    }

    private func schedulesQuery(_ sql: SQL) async throws -> QueryResult {
        do { return try await pool.query(sql) } catch let error as PostgresError where error.meansSchemaNotMigrated {
            throw ScheduleError.schedulesMissing
        }
    }

    /// The values `applySchedule` compares, keyed as in a schedule file.
    static func fields(of definition: ScheduleDefinition, reference: TemplateReference) -> [String: String] {
        [
            "template": reference.description, "cron": definition.cron.source, "timezone": ScheduleTimeZone.name(of: definition.timeZone),
            "start": definition.startAt.map { "\($0.timeIntervalSince1970)" } ?? "", "end": definition.endAt.map { "\($0.timeIntervalSince1970)" } ?? "",
            "context": definition.context.canonicalText, "priority": "\(definition.priority)", "catch_up": definition.catchUp.rawValue,
            "overlap": definition.overlap.rawValue, "paused": "\(definition.paused)",
        ]
    }

    static func fields(of schedule: ScheduleInfo) -> [String: String] {
        [
            "template": schedule.template, "cron": schedule.cron, "timezone": schedule.timezone,
            "start": schedule.startAt.map { "\($0.timeIntervalSince1970)" } ?? "", "end": schedule.endAt.map { "\($0.timeIntervalSince1970)" } ?? "",
            "context": schedule.context.canonicalText, "priority": "\(schedule.priority)", "catch_up": schedule.catchUp,
            "overlap": schedule.overlap, "paused": "\(schedule.paused)",
        ]
    }

    static func scheduleInfo(_ row: PostgresRow) throws -> ScheduleInfo {
        let namespace: String = try row.decode("namespace")
        let version: String? = try row.decode("template_version")
        return ScheduleInfo(
            id: try row.decode("id"), namespace: namespace, name: try row.decode("name"),
            template: "\(namespace)/\(try row.decode("template_name", as: String.self))" + (version.map { "@\($0)" } ?? ""),
            cron: try row.decode("cron"), timezone: try row.decode("timezone"),
            startAt: try row.decode("start_at"), endAt: try row.decode("end_at"),
            context: try JSONValue(parsing: try row.decode("context", as: String.self)),
            priority: try row.decode("priority", as: Int.self), catchUp: try row.decode("catch_up"), overlap: try row.decode("overlap"),
            paused: try row.decode("paused"), nextFireAt: try row.decode("next_fire_at"), lastFireAt: try row.decode("last_fire_at"),
            lastTaskID: try row.decode("last_task_id", as: UUID?.self).map { $0.uuidString.lowercased() },
            lastTaskState: try row.decode("last_task_state"), lastOutcome: try row.decode("last_outcome"),
            lastError: try row.decode("last_error"), firedCount: try row.decode("fired_count", as: Int.self),
            skippedCount: try row.decode("skipped_count", as: Int.self),
            createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"))
    }
}

extension JSONValue {
    /// Text that is equal for equal values whatever the key order (objects' keys sorted).
    var canonicalText: String {
        switch self {
        case .object(let fields):
            return "{" + fields.keys.sorted().map { "\(JSONValue.string($0).jsonText):\(fields[$0]!.canonicalText)" }.joined(separator: ",") + "}"
        case .array(let items):
            return "[" + items.map(\.canonicalText).joined(separator: ",") + "]"
        default:
            return jsonText
        }
    }
}
