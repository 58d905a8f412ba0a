import Foundation

/// How long a template's finished tasks are kept, by final state, before the orchestrators delete
/// them with everything they own (steps, results, transitions). A state the template leaves out
/// follows the orchestrators' defaults (`--retention-complete` and the like).
///
/// Stored in the normalized definition as `retention: {complete_ms: …, error_ms: null, …}`: a
/// number of milliseconds, or null for `forever`; an absent key means "the default". A template
/// without `retention:` stores no key at all, so its content hash is what it was before retention
/// existed.
public struct RetentionPolicy: Sendable, Hashable, Codable {
    public var complete: RetentionPeriod?
    public var error: RetentionPeriod?
    public var cancelled: RetentionPeriod?
    public var resolvedManually: RetentionPeriod?

    public init(complete: RetentionPeriod? = nil, error: RetentionPeriod? = nil,
                cancelled: RetentionPeriod? = nil, resolvedManually: RetentionPeriod? = nil) {
        self.complete = complete
        self.error = error
        self.cancelled = cancelled
        self.resolvedManually = resolvedManually
    }

    /// The final states a period can be given for, as written in YAML (and as the task states are named).
    public static let states = ["complete", "error", "cancelled", "resolved_manually"]

    public var isEmpty: Bool { complete == nil && error == nil && cancelled == nil && resolvedManually == nil }

    /// The period given for `state` (one of ``states``), if any.
    public subscript(state: String) -> RetentionPeriod? {
        get {
            switch state {
            case "complete": complete
            case "error": error
            case "cancelled": cancelled
            case "resolved_manually": resolvedManually
            default: nil
            }
        }
        set {
            switch state {
            case "complete": complete = newValue
            case "error": error = newValue
            case "cancelled": cancelled = newValue
            case "resolved_manually": resolvedManually = newValue
            default: break
            }
        }
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
        init(state: String) { stringValue = state + "_ms" }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        for state in Self.states {
            let key = Key(state: state)
            guard container.contains(key) else { continue }
            if try container.decodeNil(forKey: key) {
                self[state] = .forever
            } else {
                self[state] = .after(TemplateDuration(milliseconds: try container.decode(Int64.self, forKey: key)))
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for state in Self.states {
            switch self[state] {
            case nil: continue
            case .forever: try container.encodeNil(forKey: Key(state: state))
            case .after(let duration): try container.encode(duration.milliseconds, forKey: Key(state: state))
            }
        }
    }
}

/// How long a finished task is kept: a span of time after it finished, or forever.
public enum RetentionPeriod: Sendable, Hashable, CustomStringConvertible {
    case after(TemplateDuration)
    case forever

    /// The shortest period accepted: a task deleted sooner could vanish under `orcastra submit --wait`
    /// or a person reading it.
    public static let minimum = TemplateDuration.minutes(1)
    /// The longest: a hundred years (longer is a typo, and is what `forever` is for).
    public static let maximum = TemplateDuration(milliseconds: 36_500 * 86_400_000)

    /// Reads `7d`, `36h`, `1d12h`, `forever`; the error completes "<field> …".
    public init(parsing text: String) throws(TemplateDurationError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "forever" { self = .forever; return }
        if !trimmed.isEmpty, trimmed.allSatisfy(\.isNumber) {
            throw TemplateDurationError("'\(text)' has no unit; add one, e.g. \(trimmed)d for days, or write forever")
        }
        let duration: TemplateDuration
        do {
            duration = try TemplateDuration(parsingDays: text)
        } catch {
            throw TemplateDurationError(error.message + ", or forever")
        }
        guard duration >= Self.minimum else {
            throw TemplateDurationError("'\(text)' is shorter than the shortest retention, \(Self.minimum); keep finished tasks at least a minute")
        }
        guard duration <= Self.maximum else {
            throw TemplateDurationError("'\(text)' is longer than the longest retention, 36500d; write forever to keep them for good")
        }
        self = .after(duration)
    }

    /// `7d`, `36h`, `forever`.
    public var description: String {
        switch self {
        case .forever: "forever"
        case .after(let duration): duration.dayDescription
        }
    }
}
