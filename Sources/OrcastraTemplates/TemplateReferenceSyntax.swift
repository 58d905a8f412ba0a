/// How a reference to a template is read — `namespace/name` or `namespace/name@version` — wherever
/// one is written: a `workflow:` step (``WorkflowReference``), the command line and the API
/// (`TemplateReference` in OrcastraStore), a schedule (`ScheduleDefinition`). One reader, so that
/// all of them accept the same texts; each caller words a ``Problem`` for its own reader.
public enum TemplateReferenceSyntax {
    /// The pieces of a well-formed reference.
    public struct Parts: Sendable, Hashable {
        public var namespace: String
        public var name: String
        public var version: SemanticVersion?
    }

    /// What is wrong with a reference, most basic first.
    public enum Problem: Error, Sendable, Equatable {
        /// Not two non-empty names around one `/` (before an `@`).
        case shape
        /// The namespace (`label` "namespace") or the name (`label` "name") breaks the naming
        /// rule; `problem` says how (``TemplateNames/problem(with:allowDots:)``).
        case invalidName(label: String, part: String, problem: String)
        /// What follows the `@` is not a semantic version; `message` says why.
        case invalidVersion(text: String, message: String)
    }

    /// Reads `text`; the first problem found is thrown.
    public static func parse(_ text: String) throws(Problem) -> Parts {
        let (path, versionText): (Substring, Substring?) = {
            guard let at = text.firstIndex(of: "@") else { return (text[...], nil) }
            return (text[..<at], text[text.index(after: at)...])
        }()
        let names = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard names.count == 2, !names[0].isEmpty, !names[1].isEmpty else { throw .shape }
        for (part, label) in zip(names, ["namespace", "name"]) {
            if let problem = TemplateNames.problem(with: part, allowDots: false) {
                throw .invalidName(label: label, part: part, problem: problem)
            }
        }
        var version: SemanticVersion?
        if let versionText {
            switch Result(catching: { () throws(SemanticVersionError) in try SemanticVersion(parsing: String(versionText)) }) {
            case .success(let parsed): version = parsed
            case .failure(let error): throw .invalidVersion(text: String(versionText), message: error.message)
            }
        }
        return Parts(namespace: names[0], name: names[1], version: version)
    }
}
