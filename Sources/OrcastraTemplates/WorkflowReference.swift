/// What a `workflow:` step runs: another registered template, written `namespace/name` (its
/// current version when the child task is created: the default version, else the highest release
/// that is not deprecated) or `namespace/name@version` (that version).
public struct WorkflowReference: Sendable, Hashable, CustomStringConvertible {
    public var namespace: String
    public var name: String
    public var version: SemanticVersion?

    public init(namespace: String, name: String, version: SemanticVersion? = nil) {
        self.namespace = namespace
        self.name = name
        self.version = version
    }

    /// `ns/name` or `ns/name@1.2.0`, as templates write it.
    public var description: String {
        "\(namespace)/\(name)" + (version.map { "@\($0)" } ?? "")
    }

    /// Reads `ns/name` or `ns/name@version`; throws a sentence saying what is wrong.
    public init(parsing text: String) throws(WorkflowReferenceError) {
        let (path, versionText): (Substring, Substring?) = {
            guard let at = text.firstIndex(of: "@") else { return (text[...], nil) }
            return (text[..<at], text[text.index(after: at)...])
        }()
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw WorkflowReferenceError("'\(text)' is not a template reference; write namespace/name or namespace/name@version, like billing/refunds@1.2.0")
        }
        for (part, label) in [(parts[0], "namespace"), (parts[1], "name")] {
            if let problem = TemplateNames.problem(with: String(part), allowDots: false) {
                throw WorkflowReferenceError("the \(label) in '\(text)' is not valid: \(problem); a \(label) must \(TemplateNames.rule)")
            }
        }
        var version: SemanticVersion?
        if let versionText {
            switch Result(catching: { () throws(SemanticVersionError) in try SemanticVersion(parsing: String(versionText)) }) {
            case .success(let parsed): version = parsed
            case .failure(let error): throw WorkflowReferenceError("the version in '\(text)' \(error.message)")
            }
        }
        self.init(namespace: String(parts[0]), name: String(parts[1]), version: version)
    }
}

/// Why a `workflow:` reference could not be read.
public struct WorkflowReferenceError: Error, Sendable, CustomStringConvertible {
    public var message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}
