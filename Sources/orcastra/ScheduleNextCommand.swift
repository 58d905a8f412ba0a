import ArgumentParser
import Foundation
import OrcastraSchedules

/// `orcastra schedule next EXPR`: the coming fire times of a cron expression, without a database.
struct ScheduleNextCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "next",
        abstract: "Preview the fire times of a cron expression (no database needed).",
        discussion: """
            Prints each fire time in the zone's local time with its offset, and in UTC. Daylight \
            saving: a local time the clocks skip fires once at the end of the gap; one that occurs \
            twice fires once, the first time (docs/schedules.md).

            Exit codes: 0 success; 65 an invalid expression, zone or time.

            Examples:
              orcastra schedule next '*/15 9-17 * * mon-fri' --timezone Europe/Berlin
              orcastra schedule next '30 2 * * *' --timezone Europe/Berlin --from 2027-03-27T00:00Z --count 3
              orcastra schedule next @daily --json
            """
    )

    @Argument(help: ArgumentHelp("A cron expression: 5 fields, 6 with a leading second, or a macro like @daily. Quote it.", valueName: "expression"))
    var expression: String

    @Option(help: ArgumentHelp("The IANA time zone the expression is read in.", valueName: "zone"))
    var timezone = "UTC"

    @Option(help: ArgumentHelp("List fire times after this time (RFC 3339; without an offset it is in --timezone). Default: now.", valueName: "time"))
    var from: String?

    @Option(help: "How many fire times to list (1–1000).")
    var count = 10

    @Flag(help: "Print a JSON object: the expression, the zone, and the fire times as RFC 3339 UTC strings.")
    var json = false

    func validate() throws {
        guard (1...1000).contains(count) else { throw ValidationError("--count must be between 1 and 1000.") }
    }

    func run() async throws {
        let cron: CronExpression
        do { cron = try CronExpression(parsing: expression) } catch {
            throw CLIFailure(message: error.message, exitCode: .invalidInput)
        }
        if let problem = ScheduleDefinition.problem(withCron: cron) { throw CLIFailure(message: problem, exitCode: .invalidInput) }
        let zone: TimeZone
        do { zone = try ScheduleTimeZone.named(timezone) } catch {
            throw CLIFailure(message: "--timezone: \(error)", exitCode: .invalidInput)
        }
        var start = Date()
        if let from {
            guard let date = Timestamp.parse(from, timeZone: zone) else {
                throw CLIFailure(message: "--from '\(from)' is not a time. Write it like \(Timestamp.examples.replacingOccurrences(of: "local time", with: "in --timezone")); without an offset it is in --timezone (\(ScheduleTimeZone.name(of: zone))).",
                                 exitCode: .invalidInput)
            }
            start = date
        }
        let times = cron.fireTimes(after: start, in: zone, count: count)
        if json {
            try CLI.printJSON(NextJSON(expression: cron.source, timezone: ScheduleTimeZone.name(of: zone), fireTimes: times.map(Timestamp.format)))
            return
        }
        for time in times {
            print("\(Timestamp.formatLocal(time, in: zone)) (\(Timestamp.format(time)))")
        }
        if times.count < count {
            CLI.writeError("note: no further fire times within \(CronExpression.searchHorizonYears) years.\n")
        }
    }

    struct NextJSON: Encodable {
        var expression: String
        var timezone: String
        var fireTimes: [String]

        enum CodingKeys: String, CodingKey {
            case expression, timezone
            case fireTimes = "fire_times"
        }
    }
}
