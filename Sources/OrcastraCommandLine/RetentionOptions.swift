import ArgumentParser
import Foundation
import OrcastraTemplates

/// A retention period on the command line: `7d`, `36h`, `forever`.
public struct RetentionArgument: ExpressibleByArgument, Sendable, CustomStringConvertible {
    public var period: RetentionPeriod

    public init?(argument: String) {
        guard let parsed = try? Self.parse(argument) else { return nil }
        self = parsed
    }

    public init(_ period: RetentionPeriod) { self.period = period }

    /// For `@Option(transform:)`: ArgumentParser prints the reason after "The value … is invalid for …: ".
    public static func parse(_ text: String) throws -> RetentionArgument {
        do {
            return RetentionArgument(try RetentionPeriod(parsing: text))
        } catch {
            throw DurationArgumentError(reason: error.message)
        }
    }

    public var description: String { period.description }
    public var defaultValueDescription: String { period.description }
}

/// The orchestrators' retention defaults and pruning pace: flag, then `ORCASTRA_*` variable, then
/// the built-in default (``RetentionPolicy/orchestratorDefaults``).
public struct RetentionOptions: ParsableArguments {
    public init() {}

    @Option(help: ArgumentHelp("How long complete tasks are kept when their template does not say: e.g. 7d, 36h, or forever. (default: 7d, or ORCASTRA_RETENTION_COMPLETE)", valueName: "period"),
            transform: RetentionArgument.parse)
    public var retentionComplete: RetentionArgument?

    @Option(help: ArgumentHelp("The same for tasks in error. (default: 30d, or ORCASTRA_RETENTION_ERROR)", valueName: "period"),
            transform: RetentionArgument.parse)
    public var retentionError: RetentionArgument?

    @Option(help: ArgumentHelp("The same for cancelled tasks. (default: 7d, or ORCASTRA_RETENTION_CANCELLED)", valueName: "period"),
            transform: RetentionArgument.parse)
    public var retentionCancelled: RetentionArgument?

    @Option(help: ArgumentHelp("The same for tasks resolved by hand. (default: 30d, or ORCASTRA_RETENTION_RESOLVED_MANUALLY)", valueName: "period"),
            transform: RetentionArgument.parse)
    public var retentionResolvedManually: RetentionArgument?

    // Both are checked by the parser (transform), so a bad value from ORCASTRA_* or orcastra.yaml
    // is refused naming where it came from (docs/configuration.md).
    @Option(help: ArgumentHelp("How often to look for expired tasks, or 'off' to never delete any. (default: 1m, or ORCASTRA_PRUNE_INTERVAL)", valueName: "duration"),
            transform: { text in
                if text == "off" { return "off" }
                do { _ = try DurationArgument.parse(text) } catch { throw DurationArgumentError(reason: "\(error); or write off to turn pruning off") }
                return text
            })
    public var pruneInterval: String?

    @Option(help: ArgumentHelp("The most rows one pruning transaction deletes, 1 to 10000. (default: 10000, or ORCASTRA_PRUNE_BATCH_ROWS)", valueName: "rows"),
            transform: { text in
                guard let rows = Int(text) else { throw DurationArgumentError(reason: "'\(text)' is not a whole number; write e.g. 10000") }
                guard (1...10_000).contains(rows) else { throw DurationArgumentError(reason: "must be between 1 and 10000 (rows per transaction), got \(rows)") }
                return rows
            })
    public var pruneBatchRows: Int?

    @Option(help: ArgumentHelp("How many weeks of history partitions to keep created ahead of this one, 0 to 520. (default: 4, or ORCASTRA_HISTORY_WEEKS_AHEAD)", valueName: "weeks"),
            transform: { text in
                guard let weeks = Int(text) else { throw DurationArgumentError(reason: "'\(text)' is not a whole number of weeks; write e.g. 4") }
                guard (0...520).contains(weeks) else { throw DurationArgumentError(reason: "must be between 0 and 520 weeks, got \(weeks)") }
                return weeks
            })
    public var historyWeeksAhead: Int = 4

    @Option(help: ArgumentHelp("How often to create history partitions ahead and drop the weeks no task is left of, at least 1s. (default: 10m, or ORCASTRA_HISTORY_MAINTENANCE_INTERVAL)", valueName: "duration"),
            transform: { text in
                let duration = try DurationArgument.parse(text)
                guard duration.duration >= .seconds(1) else { throw DurationArgumentError(reason: "must be at least 1s, got \(text)") }
                return duration
            })
    public var historyMaintenanceInterval = DurationArgument("10m")

    /// The effective settings, each from its flag, else its variable, else the default; a bad
    /// variable is named with how to fix it.
    public func resolved(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (defaults: RetentionPolicy, interval: Duration?, batchRows: Int) {
        let flags = RetentionPolicy(complete: retentionComplete?.period, error: retentionError?.period,
                                    cancelled: retentionCancelled?.period, resolvedManually: retentionResolvedManually?.period)
        let defaults = try Self.defaults(flags: flags, environment: environment)
        let intervalText = pruneInterval ?? Self.value("ORCASTRA_PRUNE_INTERVAL", environment)
        let intervalSource = pruneInterval != nil ? "--prune-interval" : "ORCASTRA_PRUNE_INTERVAL"
        var interval: Duration? = .seconds(60)
        if let intervalText {
            if intervalText == "off" {
                interval = nil
            } else {
                do {
                    interval = try DurationArgument.parse(intervalText).duration
                } catch {
                    throw ValidationError("\(intervalSource) '\(intervalText)': \(error); or write off to turn pruning off.")
                }
            }
        }
        var batchRows = 10_000
        if let pruneBatchRows {
            batchRows = pruneBatchRows
        } else if let text = Self.value("ORCASTRA_PRUNE_BATCH_ROWS", environment) {
            guard let value = Int(text) else { throw ValidationError("ORCASTRA_PRUNE_BATCH_ROWS=\(text) is not a whole number; write e.g. 10000.") }
            batchRows = value
        }
        guard (1...10_000).contains(batchRows) else {
            throw ValidationError("\(pruneBatchRows != nil ? "--prune-batch-rows" : "ORCASTRA_PRUNE_BATCH_ROWS") must be between 1 and 10000 (rows per transaction), got \(batchRows).")
        }
        return (defaults, interval, batchRows)
    }

    /// The retention defaults: each state from `flags`, else `ORCASTRA_RETENTION_<STATE>`, else
    /// ``RetentionPolicy/orchestratorDefaults`` (`orcastra prune` uses it without flags).
    public static func defaults(flags: RetentionPolicy = RetentionPolicy(),
                                environment: [String: String] = ProcessInfo.processInfo.environment) throws -> RetentionPolicy {
        var defaults = RetentionPolicy.orchestratorDefaults
        for state in RetentionPolicy.states {
            let variable = "ORCASTRA_RETENTION_\(state.uppercased())"
            if let flag = flags[state] {
                defaults[state] = flag
            } else if let text = value(variable, environment) {
                switch Result(catching: { () throws(TemplateDurationError) in try RetentionPeriod(parsing: text) }) {
                case .success(let period): defaults[state] = period
                case .failure(let error): throw ValidationError("\(variable)=\(text): \(error.message).")
                }
            }
        }
        return defaults
    }

    static func value(_ name: String, _ environment: [String: String]) -> String? {
        guard let value = environment[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }
}
