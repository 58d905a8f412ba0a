/// What is wrong with a cron expression, as one sentence for a person.
///
/// `field` and `text` let a caller point at the part to fix (a schedule file reports the
/// message at the `cron` key; a future editor integration could underline `text`).
public struct CronError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `second`, `minute`, `hour`, `day-of-month`, `month`, `day-of-week`, or `expression` for
    /// the expression as a whole (field count, unknown macro).
    public var field: String
    /// The offending part as written.
    public var text: String
    /// The whole sentence, e.g. `minute field "61" is out of range 0–59`.
    public var message: String

    public init(field: String, text: String, message: String) {
        self.field = field
        self.text = text
        self.message = message
    }

    public var description: String { message }
}
