import ArgumentParser
import Foundation
import Logging
import Synchronization

/// `--log-format json`: one JSON object per line on stderr, for log shippers. Its keys are
/// `time` (RFC 3339, UTC, milliseconds), `level`, `message`, `logger` (the logger's label), then
/// every metadata key as it is — the handler's, the metadata provider's (`trace_id` and `span_id`
/// when tracing provides them) and the record's, later ones winning — with nested values as JSON
/// objects and arrays. A metadata key that would clash with the first four is written with a
/// `metadata.` prefix. Line breaks in a message or value are escaped as JSON does, so a multi-line
/// message stays one record.
struct JSONLogHandler: LogHandler {
    let label: String
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .info

    init(label: String, metadataProvider: Logger.MetadataProvider?) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let recorded = event.metadata { merged.merge(recorded) { $1 } }
        let line = Self.line(time: Date(), level: event.level, message: event.message.description, label: label, metadata: merged)
        Self.output.withLock { _ in FileHandle.standardError.write(Data(line.utf8)) }
    }

    private static let output = Mutex(())
    static let reserved: Set<String> = ["time", "level", "message", "logger"]

    /// One record as a line of JSON (with its line break).
    static func line(time: Date, level: Logger.Level, message: String, label: String, metadata: Logger.Metadata) -> String {
        var out = "{\"time\":"
        appendString(time.formatted(timeFormat), to: &out)
        out += ",\"level\":"
        appendString(level.rawValue, to: &out)
        out += ",\"message\":"
        appendString(message, to: &out)
        out += ",\"logger\":"
        appendString(label, to: &out)
        for key in metadata.keys.sorted() {
            out += ","
            appendString(reserved.contains(key) ? "metadata.\(key)" : key, to: &out)
            out += ":"
            appendValue(metadata[key]!, to: &out)
        }
        out += "}\n"
        return out
    }

    private static let timeFormat = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)

    private static func appendValue(_ value: Logger.Metadata.Value, to out: inout String) {
        switch value {
        case .string(let text): appendString(text, to: &out)
        case .stringConvertible(let convertible): appendString(convertible.description, to: &out)
        case .array(let values):
            out += "["
            for (index, element) in values.enumerated() {
                if index > 0 { out += "," }
                appendValue(element, to: &out)
            }
            out += "]"
        case .dictionary(let dictionary):
            out += "{"
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { out += "," }
                appendString(key, to: &out)
                out += ":"
                appendValue(dictionary[key]!, to: &out)
            }
            out += "}"
        }
    }

    /// A JSON string literal (RFC 8259): quotes, backslashes and control characters escaped.
    static func appendString(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

/// `--log-format`: `text` (one line per record, for people; the default) or `json`.
public enum LogFormat: String, CaseIterable, Sendable {
    case text, json
}

extension LogFormat: ExpressibleByArgument {
    /// ORCASTRA_LOG_FORMAT when set to a known format; `LogFormat.validateEnvironment()` refuses others.
    static var fromEnvironment: LogFormat? {
        ProcessInfo.processInfo.environment["ORCASTRA_LOG_FORMAT"].flatMap { LogFormat(rawValue: $0.lowercased()) }
    }

    /// Refuses an ORCASTRA_LOG_FORMAT that names no format (an empty one is ignored).
    static func validateEnvironment() throws {
        guard let value = ProcessInfo.processInfo.environment["ORCASTRA_LOG_FORMAT"], !value.isEmpty,
              LogFormat(rawValue: value.lowercased()) == nil else { return }
        throw ValidationError("ORCASTRA_LOG_FORMAT='\(value)' is not a log format: set it to text or json, or unset it.")
    }
}
