/// What is wrong with the configuration, where: `orcastra.yaml:7: worker.concurency: unknown key;
/// did you mean 'concurrency'?`, or `ORCASTRA_JSON: …` for a variable.
public struct ConfigurationIssue: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file, or the environment variable, the value came from.
    public var origin: String
    /// 1-based line in the file; 0 for a variable or the whole file.
    public var line: Int
    /// The key as written, `worker.concurrency`; empty for the whole file.
    public var path: String
    public var message: String

    public init(origin: String, line: Int = 0, path: String = "", message: String) {
        self.origin = origin
        self.line = line
        self.path = path
        self.message = message
    }

    public var description: String {
        var text = origin
        if line > 0 { text += ":\(line)" }
        if !path.isEmpty { text += ": \(path)" }
        return text + ": " + message
    }
}

/// All issues found in one file, printed one per line (the exit status is 78, EX_CONFIG).
public struct ConfigurationIssues: Error, Sendable, CustomStringConvertible {
    public var issues: [ConfigurationIssue]
    public init(_ issues: [ConfigurationIssue]) { self.issues = issues }
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}
