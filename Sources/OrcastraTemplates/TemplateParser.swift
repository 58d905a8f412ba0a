import Foundation
import Yams

/// Reads a workflow template from YAML and checks everything that can be
/// checked without a database: keys, types, names, durations, versions,
/// retry policies, the input schema and the shape of the DAG.
public enum TemplateParser {
    static let topLevelKeys = ["namespace", "name", "version", "description", "input_schema", "defaults", "retention", "steps",
                                "timeout", "concurrency"]
    static let concurrencyKeys = ["key", "limit"]
    static let stepKeys = ["name", "description", "depends_on", "handler", "command", "namespace", "retry", "timeout", "concurrency",
                           "when", "trigger", "for_each", "max_parallel", "instance_input", "workflow"]
    static let defaultsKeys = ["retry", "timeout"]
    static let retryKeys = ["max_attempts", "backoff", "initial_delay", "max_delay", "jitter"]
    static let commandKeys = ["argv", "env", "working_directory"]

    /// Parses and validates one template.
    ///
    /// - Parameters:
    ///   - yaml: the file's text.
    ///   - file: how to name the file in messages (usually its path).
    /// - Throws: ``TemplateValidationError`` listing every problem found, in file order.
    public static func parse(yaml: String, file: String) throws(TemplateValidationError) -> WorkflowTemplate {
        let result = parseCollectingIssues(yaml: yaml, file: file)
        guard let template = result.template, result.issues.isEmpty else {
            throw TemplateValidationError(issues: result.issues)
        }
        return template
    }

    struct Result {
        var template: WorkflowTemplate?
        var issues: [TemplateIssue]
        /// Where the template names itself, to point at when another file claims the same identity.
        var identityPosition: SourcePosition?
    }

    static func parseCollectingIssues(yaml: String, file: String) -> Result {
        let session = ParseSession(file: file, source: yaml)
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            reportYAMLError(error, in: session)
            return Result(template: nil, issues: session.sortedIssues, identityPosition: nil)
        }
        guard let root, !ParseSession.isNull(root) else {
            session.report(at: nil, path: "", "the file is empty; a template needs at least namespace, name, version and steps")
            return Result(template: nil, issues: session.sortedIssues, identityPosition: nil)
        }
        let template = TemplateReader(session: session).readTemplate(root)
        let issues = session.sortedIssues
        return Result(template: issues.isEmpty ? template : nil, issues: issues, identityPosition: root.mapping?["name"]?.mark.map(SourcePosition.init))
    }

    /// Turns Yams's errors into issues at the position libyaml reports.
    static func reportYAMLError(_ error: any Error, in session: ParseSession) {
        session.append(YAMLNodes.syntaxIssue(error, file: session.file, source: session.source))
    }
}
