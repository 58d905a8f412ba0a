import ArgumentParser
import OrcastraTemplates

/// A duration option written as in templates: `250ms`, `30s`, `5m`, `1h`.
public struct DurationArgument: ExpressibleByArgument, Sendable, CustomStringConvertible {
    public var duration: Duration
    public var text: String

    public init?(argument: String) {
        guard let parsed = try? Self.parse(argument) else { return nil }
        self = parsed
    }

    private init(milliseconds: Int64, text: String) {
        duration = .milliseconds(milliseconds)
        self.text = text
    }

    /// Reads a duration and says what is wrong with a bad one: for `@Option(transform:)`, whose
    /// error ArgumentParser prints after "The value '1d' is invalid for '--in <duration>': ".
    /// Positive, and at most ten years: anything longer is a typo (and overflows dates).
    public static func parse(_ text: String) throws -> DurationArgument {
        let parsed: TemplateDuration
        do {
            parsed = try TemplateDuration(parsing: text)
        } catch {
            let days = text.hasSuffix("d") ? " (there is no d: a day is 24h)" : ""
            throw DurationArgumentError(reason: error.message + days)
        }
        guard parsed.milliseconds > 0 else { throw DurationArgumentError(reason: "a duration must be longer than zero") }
        guard parsed.milliseconds <= 10 * 366 * 86_400_000 else { throw DurationArgumentError(reason: "at most ten years (87840h)") }
        return DurationArgument(milliseconds: parsed.milliseconds, text: text)
    }

    public init(_ text: String) {
        self.init(argument: text)!
    }

    public var description: String { text }
    public var defaultValueDescription: String { text }
}

/// Why a duration option was refused, in words.
public struct DurationArgumentError: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}
