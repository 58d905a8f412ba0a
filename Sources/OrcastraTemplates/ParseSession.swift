import Foundation
import Yams

/// The state of one parse: the file being read and the issues found so far.
///
/// The parser never throws midway; every reader below reports what is wrong
/// and returns nil, and the caller carries on with the next key, so a single
/// run reports every problem in the file.
final class ParseSession {
    let file: String
    let source: String
    private(set) var issues: [TemplateIssue] = []

    init(file: String, source: String) {
        self.file = file
        self.source = source
    }

    // MARK: Reporting

    func report(at position: SourcePosition?, path: String, _ message: String) {
        issues.append(TemplateIssue(
            file: file, line: position?.line ?? 0, column: position?.column ?? 0, path: path, message: message
        ))
    }

    func append(_ issue: TemplateIssue) {
        issues.append(issue)
    }

    func report(_ node: Node?, path: String, _ message: String) {
        report(at: node?.mark.map(SourcePosition.init), path: path, message)
    }

    /// Issues in reading order, so the output follows the file top to bottom.
    var sortedIssues: [TemplateIssue] {
        issues.enumerated().sorted { a, b in
            (a.element.line, a.element.column, a.offset) < (b.element.line, b.element.column, b.offset)
        }.map(\.element)
    }

    // MARK: Describing nodes

    static func describe(_ node: Node) -> String { YAMLNodes.describe(node) }
    static func isNull(_ node: Node) -> Bool { YAMLNodes.isNull(node) }
    static func path(_ base: String, _ key: String) -> String { YAMLNodes.path(base, key) }
    static func path(_ base: String, index: Int) -> String { YAMLNodes.path(base, index: index) }

    // MARK: Readers

    /// The mapping's entries by key, after reporting non-text keys and keys
    /// that are not in `allowed` (with a "did you mean" when one is close).
    func entries(of mapping: Node.Mapping, allowed: [String], path: String, owner: String) -> [String: (key: Node, value: Node)] {
        var result: [String: (key: Node, value: Node)] = [:]
        for (key, value) in mapping {
            guard let name = key.scalar?.string else {
                report(key, path: path, "\(owner) has a key that is \(Self.describe(key)); keys must be plain names")
                continue
            }
            guard allowed.contains(name) else {
                let hint = EditDistance.suggestion(for: name, among: allowed)
                    .map { "did you mean '\($0)'?" }
                    ?? "allowed keys are: \(allowed.joined(separator: ", "))."
                report(key, path: Self.path(path, name), "unknown key '\(name)' in \(owner); \(hint)")
                continue
            }
            result[name] = (key, value)
        }
        return result
    }

    /// Reports each missing required key at the mapping that lacks it.
    func requireKeys(_ keys: [String], in entries: [String: (key: Node, value: Node)], mappingNode: Node, path: String, owner: String, hints: [String: String] = [:]) {
        for key in keys where entries[key] == nil {
            let hint = hints[key].map { "; \($0)" } ?? ""
            report(mappingNode, path: path, "\(owner) is missing the required key '\(key)'\(hint)")
        }
    }

    func mapping(_ node: Node, path: String, label: String, example: String) -> Node.Mapping? {
        if let mapping = node.mapping { return mapping }
        report(node, path: path, "\(label) must be a mapping (key: value lines), got \(Self.describe(node)); write it like \(example)")
        return nil
    }

    func sequence(_ node: Node, path: String, label: String, example: String) -> Node.Sequence? {
        if let sequence = node.sequence { return sequence }
        report(node, path: path, "\(label) must be a list, got \(Self.describe(node)); write it like \(example)")
        return nil
    }

    /// Any non-null scalar, as text (`8080` in an argv is the text "8080").
    func text(_ node: Node, path: String, label: String) -> String? {
        if Self.isNull(node) {
            report(node, path: path, "\(label) is empty; give it a value or remove the key")
            return nil
        }
        guard let scalar = node.scalar else {
            report(node, path: path, "\(label) must be text, got \(Self.describe(node))")
            return nil
        }
        return scalar.string
    }

    func integer(_ node: Node, path: String, label: String) -> Int? {
        guard node.scalar != nil, node.tag.rawValue == Tag.Name.int.rawValue, let value = node.int else {
            report(node, path: path, "\(label) must be a whole number, got \(Self.describe(node))")
            return nil
        }
        return value
    }

    func boolean(_ node: Node, path: String, label: String) -> Bool? {
        guard node.scalar != nil, node.tag.rawValue == Tag.Name.bool.rawValue, let value = node.bool else {
            report(node, path: path, "\(label) must be true or false, got \(Self.describe(node))")
            return nil
        }
        return value
    }

    func duration(_ node: Node, path: String, label: String) -> TemplateDuration? {
        guard let text = text(node, path: path, label: label) else { return nil }
        do {
            let duration = try TemplateDuration(parsing: text)
            guard duration <= TemplateDuration.maximum else {
                report(node, path: path, "\(label) '\(text)' is longer than the longest Orcastra accepts, \(TemplateDuration.maximum) (30 days)")
                return nil
            }
            return duration
        } catch {
            report(node, path: path, "\(label) \(error.message)")
            return nil
        }
    }

    /// A name following ``TemplateNames``; reported with the offending
    /// character and, when there is one, a corrected spelling.
    func name(_ node: Node, path: String, label: String, allowDots: Bool = false) -> String? {
        guard let value = text(node, path: path, label: label) else { return nil }
        guard let problem = TemplateNames.problem(with: value, allowDots: allowDots) else { return value }
        let rule = allowDots ? TemplateNames.handlerRule : TemplateNames.rule
        let fix = TemplateNames.fixedSpelling(of: value, allowDots: allowDots).map { "; try '\($0)'" } ?? ""
        report(node, path: path, "\(label) '\(value)' is invalid because \(problem); names must \(rule)\(fix)")
        return nil
    }

    /// Converts YAML to JSON using the YAML types Yams resolved (`3` is an integer, `'3'` is text).
    func jsonValue(_ node: Node, path: String) -> JSONValue? {
        YAMLNodes.json(node, path: path) { node, path, message in report(node, path: path, message) }
    }
}

/// A 1-based line and column (Yams's `Mark` cannot be created outside Yams).
struct SourcePosition: Sendable, Hashable {
    var line: Int
    var column: Int

    init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    init(_ mark: Mark) {
        self.init(line: mark.line, column: mark.column)
    }
}
