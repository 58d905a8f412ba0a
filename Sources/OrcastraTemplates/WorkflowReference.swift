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

    /// Reads `ns/name` or `ns/name@version` (``TemplateReferenceSyntax``); throws a sentence saying
    /// what is wrong, as a template's `workflow:` key reports it.
    public init(parsing text: String) throws(WorkflowReferenceError) {
        switch Result(catching: { () throws(TemplateReferenceSyntax.Problem) in try TemplateReferenceSyntax.parse(text) }) {
        case .success(let parts):
            self.init(namespace: parts.namespace, name: parts.name, version: parts.version)
        case .failure(.shape):
            throw WorkflowReferenceError("'\(text)' is not a template reference; write namespace/name or namespace/name@version, like billing/refunds@1.2.0")
        case .failure(.invalidName(let label, _, let problem)):
            throw WorkflowReferenceError("the \(label) in '\(text)' is not valid: \(problem); a \(label) must \(TemplateNames.rule)")
        case .failure(.invalidVersion(_, let message)):
            throw WorkflowReferenceError("the version in '\(text)' \(message)")
        }
    }
}

/// Why a `workflow:` reference could not be read.
public struct WorkflowReferenceError: Error, Sendable, CustomStringConvertible {
    public var message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}
