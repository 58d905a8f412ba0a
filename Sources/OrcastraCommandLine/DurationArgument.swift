import ArgumentParser
import OrcastraTemplates

/// A duration option written as in templates: `250ms`, `30s`, `5m`, `1h`.
public struct DurationArgument: ExpressibleByArgument, Sendable, CustomStringConvertible {
    public var duration: Duration
    public var text: String

    public init?(argument: String) {
        guard let parsed = try? TemplateDuration(parsing: argument), parsed.milliseconds > 0 else { return nil }
        duration = .milliseconds(parsed.milliseconds)
        text = argument
    }

    public init(_ text: String) {
        self.init(argument: text)!
    }

    public var description: String { text }
    public var defaultValueDescription: String { text }
}
