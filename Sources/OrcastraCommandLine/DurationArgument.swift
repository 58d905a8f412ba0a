import ArgumentParser
import OrcastraTemplates

/// A duration option written as in templates: `250ms`, `30s`, `5m`, `1h`.
public struct DurationArgument: ExpressibleByArgument, Sendable, CustomStringConvertible {
    public var duration: Duration
    public var text: String

    public init?(argument: String) {
        // Positive, and at most ten years: anything longer is a typo (and overflows dates).
        guard let parsed = try? TemplateDuration(parsing: argument), parsed.milliseconds > 0,
              parsed.milliseconds <= 10 * 366 * 86_400_000 else { return nil }
        duration = .milliseconds(parsed.milliseconds)
        text = argument
    }

    public init(_ text: String) {
        self.init(argument: text)!
    }

    public var description: String { text }
    public var defaultValueDescription: String { text }
}
