import Foundation
import OrcastraTemplates

/// One schedule as a person writes it (YAML) or the CLI builds it.
///
/// The throwing initializer and ``ScheduleFileReader`` check the same rules: the cron expression
/// parses, the zone is known, `endAt` is after `startAt`, the name and template reference are
/// well formed, `context` is an object, `priority` fits the database's integer. The template's
/// existence needs a database and is not checked here.
public struct ScheduleDefinition: Sendable, Equatable {
    /// Same characters as template names (see ``TemplateNames``).
    public var name: String
    /// `namespace/name` or `namespace/name@version`.
    public var template: String
    public var cron: CronExpression
    public var timeZone: TimeZone
    /// Nothing fires before this instant (inclusive bound).
    public var startAt: Date?
    /// Nothing fires after this instant (inclusive bound).
    public var endAt: Date?
    /// The context of every task the schedule starts; always an object.
    public var context: JSONValue
    public var catchUp: CatchUpPolicy
    public var overlap: OverlapPolicy
    /// As `orcastra submit --priority`: a 32-bit integer, higher runs first.
    public var priority: Int
    public var paused: Bool

    public static let utc = TimeZone(identifier: "UTC")!

    public init(name: String, template: String, cron: CronExpression, timeZone: TimeZone = ScheduleDefinition.utc,
                startAt: Date? = nil, endAt: Date? = nil, context: JSONValue = .object([:]),
                catchUp: CatchUpPolicy = .latest, overlap: OverlapPolicy = .allow, priority: Int = 0,
                paused: Bool = false) throws(ScheduleDefinitionError) {
        self.name = name
        self.template = template
        self.cron = cron
        self.timeZone = timeZone
        self.startAt = startAt
        self.endAt = endAt
        self.context = context
        self.catchUp = catchUp
        self.overlap = overlap
        self.priority = priority
        self.paused = paused
        if let problem = Self.problem(withName: name) { throw ScheduleDefinitionError(key: "name", message: problem) }
        if let problem = Self.problem(withTemplate: template) { throw ScheduleDefinitionError(key: "template", message: problem) }
        if let problem = Self.problem(withCron: cron) { throw ScheduleDefinitionError(key: "cron", message: problem) }
        if let problem = Self.problem(withStart: startAt, end: endAt) { throw ScheduleDefinitionError(key: "end", message: problem) }
        if let problem = Self.problem(withContext: context) { throw ScheduleDefinitionError(key: "context", message: problem) }
        if let problem = Self.problem(withPriority: priority) { throw ScheduleDefinitionError(key: "priority", message: problem) }
    }

    /// The first fire time strictly after `date` within `startAt`…`endAt`, or nil. Pausing is the
    /// orchestrator's business and is not looked at.
    public func nextFireTime(after date: Date) -> Date? {
        ScheduleFiring.firstFireTime(cron, in: timeZone, start: startAt, end: endAt, now: date)
    }

    // MARK: The rules, one sentence each (shared with the file reader)

    public static func problem(withName name: String) -> String? {
        guard let problem = TemplateNames.problem(with: name, allowDots: false) else { return nil }
        return "schedule name '\(name)' is invalid because \(problem); names must \(TemplateNames.rule)"
    }

    /// Only the syntax (``TemplateReferenceSyntax``): `namespace/name` or `namespace/name@version`
    /// with valid names and a semantic version.
    public static func problem(withTemplate text: String) -> String? {
        switch Result(catching: { () throws(TemplateReferenceSyntax.Problem) in try TemplateReferenceSyntax.parse(text) }) {
        case .success:
            return nil
        case .failure(.shape):
            return "'\(text)' is not a template reference; write it as NAMESPACE/NAME or NAMESPACE/NAME@VERSION, e.g. examples/linear@1.0.0"
        case .failure(.invalidName(_, let part, let problem)):
            return "'\(text)' is not a template reference: '\(part.prefix(40))' is invalid because \(problem); names must \(TemplateNames.rule)"
        case .failure(.invalidVersion(let version, _)):
            return "'\(text)' is not a template reference: '\(version)' is not a semantic version like 1.2.0"
        }
    }

    public static func problem(withCron cron: CronExpression) -> String? {
        cron.canEverFire ? nil : "cron expression \"\(cron.source)\" never fires: no month it allows has the days of the month it names"
    }

    public static func problem(withStart start: Date?, end: Date?) -> String? {
        guard let start, let end, end <= start else { return nil }
        return "end \(Timestamp.format(end)) is not after start \(Timestamp.format(start)); nothing would ever fire"
    }

    public static func problem(withContext context: JSONValue) -> String? {
        if case .object = context { return nil }
        return "context must be a mapping (an object), got \(context.typeName)"
    }

    public static func problem(withPriority priority: Int) -> String? {
        guard !(Int(Int32.min)...Int(Int32.max)).contains(priority) else { return nil }
        return "priority \(priority) is out of range; it must be between \(Int32.min) and \(Int32.max)"
    }
}

/// The first rule a ``ScheduleDefinition`` breaks.
public struct ScheduleDefinitionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The YAML key of the offending value (`name`, `template`, `cron`, `end`, `context`, `priority`).
    public var key: String
    public var message: String

    public init(key: String, message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { message }
}
