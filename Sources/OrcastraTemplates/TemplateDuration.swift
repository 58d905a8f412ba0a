import Foundation

/// A span of time written in a template (`250ms`, `30s`, `5m`, `1h`, `1m30s`).
///
/// Stored as whole milliseconds because that is what the database keeps
/// (`*_ms` integer columns in the normalized definition) and what retry
/// arithmetic needs; a unit is always required when written, since a bare
/// `30` is ambiguous (seconds? milliseconds?).
public struct TemplateDuration: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var milliseconds: Int64

    public init(milliseconds: Int64) {
        self.milliseconds = milliseconds
    }

    public static func milliseconds(_ value: Int64) -> TemplateDuration { .init(milliseconds: value) }
    public static func seconds(_ value: Int64) -> TemplateDuration { .init(milliseconds: value * 1_000) }
    public static func minutes(_ value: Int64) -> TemplateDuration { .init(milliseconds: value * 60_000) }
    public static func hours(_ value: Int64) -> TemplateDuration { .init(milliseconds: value * 3_600_000) }

    public static let zero = TemplateDuration(milliseconds: 0)
    /// The longest timeout or retry delay a template may give: 30 days. Every accepted value then
    /// fits the clocks and columns it reaches (a deadline on the worker's clock, a retry time in
    /// PostgreSQL) with room to spare.
    public static let maximum = TemplateDuration(milliseconds: 720 * 3_600_000)

    /// Units from largest to smallest; combined forms must follow this order.
    static let units: [(suffix: String, milliseconds: Int64)] = [
        ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1),
    ]

    /// Parses `250ms`, `30s`, `5m`, `1h` and combinations such as `1h30m` or
    /// `1m30s` (largest unit first, each unit at most once).
    public init(parsing text: String) throws(TemplateDurationError) {
        try self.init(parsing: text, units: Self.units)
    }

    /// Units with days, for spans measured in days (retention): `7d`, `36h`, `1d12h`.
    static let unitsWithDays: [(suffix: String, milliseconds: Int64)] = [("d", 86_400_000)] + units

    /// Parses like ``init(parsing:)``, and also takes days (`7d`, `1d12h`): for retention periods.
    public init(parsingDays text: String) throws(TemplateDurationError) {
        try self.init(parsing: text, units: Self.unitsWithDays)
    }

    /// The shortest text in days, hours, minutes, seconds and milliseconds (`7d`, `36h`).
    public var dayDescription: String { Self.describe(milliseconds, units: Self.unitsWithDays) }

    private init(parsing text: String, units: [(suffix: String, milliseconds: Int64)]) throws(TemplateDurationError) {
        let unitNames = units.map(\.suffix).joined(separator: ", ")
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else {
            throw TemplateDurationError("is empty; write a duration like 250ms, 30s, 5m or 1h")
        }
        if trimmed.allSatisfy(\.isNumber) {
            throw TemplateDurationError("'\(text)' has no unit; add one, e.g. \(trimmed)s for seconds or \(trimmed)ms for milliseconds")
        }
        var total: Int64 = 0
        var lastUnitIndex = -1
        var rest = Substring(trimmed)
        while !rest.isEmpty {
            let notADuration = units.count == Self.units.count
                ? "'\(text)' is not a duration; write numbers each followed by ms, s, m or h with no spaces, like 250ms, 30s, 5m, 1h or 1m30s"
                : "'\(text)' is not a duration; write numbers each followed by \(unitNames) with no spaces, like 7d, 12h or 1d12h"
            let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
            guard !digits.isEmpty else { throw TemplateDurationError(notADuration) }
            rest = rest.dropFirst(digits.count)
            let letters = rest.prefix(while: { $0.isLetter })
            rest = rest.dropFirst(letters.count)
            guard let unitIndex = units.firstIndex(where: { $0.suffix == String(letters) }) else {
                throw TemplateDurationError(notADuration)
            }
            guard unitIndex > lastUnitIndex else {
                throw TemplateDurationError("'\(text)' repeats a unit or lists a smaller unit before a larger one; write the largest unit first, like 1h30m or 1m30s")
            }
            lastUnitIndex = unitIndex
            guard let value = Int64(digits) else {
                throw TemplateDurationError("'\(text)' is too large")
            }
            let (part, overflow1) = value.multipliedReportingOverflow(by: units[unitIndex].milliseconds)
            let (sum, overflow2) = total.addingReportingOverflow(part)
            guard !overflow1, !overflow2 else {
                throw TemplateDurationError("'\(text)' is too large")
            }
            total = sum
        }
        self.milliseconds = total
    }

    /// The shortest text that parses back to the same value: `90s` rather
    /// than `1m30s`, `1s500ms` never beats `1500ms`; ties prefer the
    /// combined form with the largest units.
    public var description: String { Self.describe(milliseconds, units: Self.units) }

    private static func describe(_ milliseconds: Int64, units: [(suffix: String, milliseconds: Int64)]) -> String {
        if milliseconds == 0 { return "0s" }
        if milliseconds < 0 { return "-" + describe(-milliseconds, units: units) }
        var combined = ""
        var remainder = milliseconds
        for unit in units {
            let count = remainder / unit.milliseconds
            if count > 0 {
                combined += "\(count)\(unit.suffix)"
                remainder -= count * unit.milliseconds
            }
        }
        var best = combined
        for unit in units where milliseconds % unit.milliseconds == 0 {
            let single = "\(milliseconds / unit.milliseconds)\(unit.suffix)"
            if single.count < best.count { best = single }
        }
        return best
    }

    public static func < (lhs: TemplateDuration, rhs: TemplateDuration) -> Bool {
        lhs.milliseconds < rhs.milliseconds
    }

    /// Encoded as a bare integer of milliseconds: SQL-friendly in jsonb
    /// (`(definition->>'timeout_ms')::bigint`).
    public init(from decoder: any Decoder) throws {
        milliseconds = try decoder.singleValueContainer().decode(Int64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(milliseconds)
    }
}

/// Why a duration could not be read; the message completes the sentence
/// "<path> …" in a ``TemplateIssue``.
public struct TemplateDurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
