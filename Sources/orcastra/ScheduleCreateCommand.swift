import ArgumentParser
import Foundation
import OrcastraClient
import OrcastraCommandLine
import OrcastraSchedules
import OrcastraTemplates

/// `orcastra schedule create`: a recurring task from a cron expression.
struct ScheduleCreateCommand: AsyncParsableCommand, WorksOverHTTP {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a schedule: a template run on a cron expression in a time zone.",
        discussion: """
            The schedule lives in the template's namespace; its name is unique there. Each task \
            gets the context given here plus "scheduled_for", the occurrence it runs for (RFC 3339, \
            UTC), so handlers can be idempotent per period. Any number of orchestrators fire it, \
            each occurrence exactly once. docs/schedules.md has the cron syntax and the rules for \
            daylight saving, catch-up and overlap.

            Examples:
              orcastra schedule create nightly-report --template reports/daily --cron '0 2 * * *' --timezone Europe/Berlin
              orcastra schedule create poll --template feeds/poll@1.2.0 --cron '*/30 * * * * *' --overlap skip
              orcastra schedule create q1 --template billing/invoice --cron '@monthly' --start 2027-01-01 --end 2027-03-31T23:59:59
            """
    )

    @Argument(help: ArgumentHelp("The schedule's name (lowercase letters, digits, _ and -).", valueName: "name"))
    var name: String

    @Option(help: ArgumentHelp("The template to run: NS/NAME (the default or highest release at each firing) or NS/NAME@VERSION.", valueName: "template"))
    var template: String

    @Option(help: ArgumentHelp("5 fields (minute hour day-of-month month day-of-week), 6 with a leading seconds field, or @hourly, @daily, @weekly, @monthly, @yearly.", valueName: "expression"))
    var cron: String

    @Option(help: ArgumentHelp("The IANA time zone the expression is read in.", valueName: "zone"))
    var timezone: String = "UTC"

    @Option(help: ArgumentHelp("Nothing fires before this time (RFC 3339; without an offset, in --timezone).", valueName: "time"))
    var start: String?

    @Option(help: ArgumentHelp("Nothing fires after this time (RFC 3339; without an offset, in --timezone).", valueName: "time"))
    var end: String?

    @Option(help: ArgumentHelp("The tasks' context as a JSON object, or - to read it from standard input.", valueName: "json"))
    var context: String?

    @Option(help: ArgumentHelp("Read the context from this JSON file.", valueName: "file"))
    var contextFile: String?

    @Option(help: ArgumentHelp("Occurrences missed while no orchestrator ran: latest (one task for the most recent), all (each, at most 1,000), none.", valueName: "policy"))
    var catchUp: String = CatchUpPolicy.latest.rawValue

    @Option(help: ArgumentHelp("While the previous task is unfinished: allow (start another), skip (this occurrence), cancel_previous.", valueName: "policy"))
    var overlap: String = OverlapPolicy.allow.rawValue

    // Unconditional: `--priority -5` is a value, not an unknown flag.
    @Option(parsing: .unconditional, help: "The tasks' priority: higher runs first when workers are busy.")
    var priority: Int = 0

    @Flag(help: "Create it paused: nothing fires until `orcastra schedule resume`.")
    var paused = false

    @Flag(help: "Print the schedule as JSON.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        if context != nil && contextFile != nil {
            throw ValidationError("Give the context once: --context or --context-file, not both.")
        }
    }

    func run() async throws {
        let definition = try ScheduleOptions.definition(
            name: name, template: template, cron: cron, timezone: timezone, start: start, end: end,
            context: try CLI.readContext(context, file: contextFile), catchUp: catchUp, overlap: overlap,
            priority: priority, paused: paused)
        let created = try await CLI.withService(database) { try await $0.createSchedule(definition) }
        if json {
            try CLI.printJSON(created)
        } else {
            print("Created schedule \(created.qualifiedName): \(created.template) on '\(created.cron)' (\(created.timezone)).")
            print(ScheduleText.nextLine(created))
        }
    }
}

/// Turns command-line text into a checked `ScheduleDefinition`, with the same rules and messages
/// as a schedule file.
enum ScheduleOptions {
    static func definition(name: String, template: String, cron: String, timezone: String, start: String?, end: String?,
                           context: JSONValue, catchUp: String, overlap: String, priority: Int, paused: Bool) throws -> ScheduleDefinition {
        // Result rather than do/catch around typed throws: Swift 6.3's SILGen crashes on the latter here.
        let expression: CronExpression
        switch Result(catching: { () throws(CronError) in try CronExpression(parsing: cron) }) {
        case .success(let parsed): expression = parsed
        case .failure(let error): throw CLIFailure(message: "--cron '\(cron)': \(error)", exitCode: .invalidInput)
        }
        let zone: TimeZone
        switch Result(catching: { () throws(ScheduleTimeZoneError) in try ScheduleTimeZone.named(timezone) }) {
        case .success(let found): zone = found
        case .failure(let error): throw CLIFailure(message: "--timezone: \(error)", exitCode: .invalidInput)
        }
        guard let catchUpPolicy = CatchUpPolicy(rawValue: catchUp) else {
            throw CLIFailure(message: "--catch-up '\(catchUp)' is not a policy: use \(CatchUpPolicy.allCases.map(\.rawValue).joined(separator: ", ")).",
                             exitCode: .invalidInput)
        }
        guard let overlapPolicy = OverlapPolicy(rawValue: overlap) else {
            throw CLIFailure(message: "--overlap '\(overlap)' is not a policy: use \(OverlapPolicy.allCases.map(\.rawValue).joined(separator: ", ")).",
                             exitCode: .invalidInput)
        }
        let startAt = try start.map { try time($0, option: "--start", in: zone) }
        let endAt = try end.map { try time($0, option: "--end", in: zone) }
        let made = Result { () throws(ScheduleDefinitionError) in
            try ScheduleDefinition(name: name, template: template, cron: expression, timeZone: zone, startAt: startAt, endAt: endAt,
                                   context: context, catchUp: catchUpPolicy, overlap: overlapPolicy, priority: priority, paused: paused)
        }
        switch made {
        case .success(let definition): return definition
        case .failure(let error):
            let field = error.key == "name" ? "The schedule's name" : "--\(error.key)"
            throw CLIFailure(message: "\(field): \(error.message)", exitCode: .invalidInput)
        }
    }

    static func time(_ text: String, option: String, in zone: TimeZone) throws -> Date {
        if let date = Timestamp.parse(text, timeZone: zone) { return date }
        throw CLIFailure(message: "\(option) '\(text)' is not a time. Write it like \(Timestamp.examples); without an offset it is in the schedule's time zone (\(zone.identifier)).",
                         exitCode: .invalidInput)
    }
}
