import Logging

/// swift-log's `StreamLogHandler`, one line per record: a line break inside a message or a
/// metadata value (a command's stderr, a Python traceback) is written as `\n`, so every record
/// stays one line for people, `grep` and log shippers.
struct OneLineLogHandler: LogHandler {
    var inner: StreamLogHandler

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        event.message = "\(Self.oneLine(event.message.description))"
        event.metadata = event.metadata.map(Self.oneLine)
        inner.log(event: event)
    }

    static func oneLine(_ text: String) -> String {
        guard text.contains(where: \.isNewline) else { return text }
        return text.replacingOccurrences(of: "\r\n", with: "\\n").replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r")
    }

    static func oneLine(_ metadata: Logger.Metadata) -> Logger.Metadata {
        metadata.mapValues(oneLine)
    }

    static func oneLine(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): .string(oneLine(text))
        case .stringConvertible(let convertible): .string(oneLine(convertible.description))
        case .dictionary(let dictionary): .dictionary(oneLine(dictionary))
        case .array(let array): .array(array.map(oneLine))
        }
    }
}
