import Foundation
import Yams

/// Reads a workflow template from YAML and checks everything that can be
/// checked without a database: keys, types, names, durations, versions,
/// retry policies, the input schema and the shape of the DAG.
public enum TemplateParser {
    static let topLevelKeys = ["namespace", "name", "version", "description", "input_schema", "defaults", "steps"]
    static let stepKeys = ["name", "description", "depends_on", "handler", "command", "namespace", "retry", "timeout"]
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
        guard let yamlError = error as? YamlError else {
            session.report(at: nil, path: "", "could not read the YAML: \(error)")
            return
        }
        switch yamlError {
        case let .scanner(context, problem, mark, _),
             let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            var message = "YAML syntax error: \(problem)"
            if let context {
                message += " (\(context.text) that starts at line \(context.mark.line), column \(context.mark.column))"
            }
            message += "; check the indentation and quoting here"
            session.report(at: SourcePosition(mark), path: "", message)
        case let .duplicatedKeysInMapping(duplicates, context):
            // Yams refuses the whole document and points at the first
            // occurrence; point at the repeat instead, which is what to delete.
            let key = duplicates.first ?? "?"
            let first = SourcePosition(context.mark)
            let repeated = secondOccurrence(of: key, after: first, in: session.source)
            session.report(
                at: repeated ?? first, path: "",
                "the key '\(key)' appears twice in the same mapping (first on line \(context.mark.line)); remove or rename one of them"
            )
        case let .reader(problem, offset, value, _):
            // libyaml's reader refuses control characters and bad encodings; point at the byte.
            let position = offset.map { Self.position(ofByte: $0, in: session.source) }
            let what = value >= 0 && value < 0x20 || value == 0x7f
                ? "control character U+\(String(format: "%04X", value)) is not allowed in YAML; remove it"
                : "the file is not valid UTF-8 text: \(problem)"
            session.report(at: position, path: "", what)
        default:
            session.report(at: nil, path: "", "could not read the YAML: \(yamlError)")
        }
    }

    /// Line and column (both from 1, columns in Unicode scalars) of a UTF-8 byte offset.
    static func position(ofByte offset: Int, in source: String) -> SourcePosition {
        var line = 1
        var column = 1
        var consumed = 0
        for scalar in source.unicodeScalars {
            if consumed >= offset { break }
            consumed += String(scalar).utf8.count
            if scalar == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return SourcePosition(line: line, column: column)
    }

    /// Finds the next line at the same indentation that starts with `key:`,
    /// the repeat of a duplicated block-mapping key.
    static func secondOccurrence(of key: String, after first: SourcePosition, in source: String) -> SourcePosition? {
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false)
        guard first.line >= 1, first.line < lines.count else { return nil }
        let indent = first.column - 1
        for number in first.line..<lines.count {
            let line = lines[number]
            guard line.count > indent else { continue }
            let prefix = line.prefix(indent)
            let rest = line.dropFirst(indent)
            guard prefix.allSatisfy({ $0 == " " || $0 == "-" }), rest.hasPrefix(key) else { continue }
            let after = rest.dropFirst(key.count).drop(while: { $0 == " " })
            if after.hasPrefix(":") { return SourcePosition(line: number + 1, column: first.column) }
        }
        return nil
    }
}
