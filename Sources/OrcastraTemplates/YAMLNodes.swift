import Foundation
import Yams

/// What every YAML file reader of Orcastra shares (templates here, schedule files in
/// OrcastraSchedules): describing a node for "got …" messages, YAML to JSON by the types Yams
/// resolved, and Yams's errors as a located issue.
public enum YAMLNodes {
    /// "a list", "a mapping", "the number 3", "the text 'abc'" — for "got …" in messages.
    public static func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            switch node.tag.rawValue {
            case Tag.Name.null.rawValue: return "nothing (null)"
            case Tag.Name.int.rawValue, Tag.Name.float.rawValue: return "the number \(scalar.string)"
            case Tag.Name.bool.rawValue: return "the boolean \(scalar.string)"
            default: return "the text '\(scalar.string)'"
            }
        }
    }

    public static func isNull(_ node: Node) -> Bool {
        node.scalar != nil && node.tag.rawValue == Tag.Name.null.rawValue
    }

    /// `base.key`, or `key` at the top.
    public static func path(_ base: String, _ key: String) -> String {
        base.isEmpty ? key : "\(base).\(key)"
    }

    public static func path(_ base: String, index: Int) -> String {
        "\(base)[\(index)]"
    }

    /// Converts YAML to JSON using the YAML types Yams resolved (`3` is an integer, `'3'` is
    /// text); nil after `report(node, path, message)` for what JSON cannot hold (a non-text key,
    /// an alias).
    public static func json(_ node: Node, path: String, report: (Node, String, String) -> Void) -> JSONValue? {
        switch node {
        case .scalar(let scalar):
            switch node.tag.rawValue {
            case Tag.Name.null.rawValue: return .null
            case Tag.Name.bool.rawValue: return node.bool.map(JSONValue.bool) ?? .string(scalar.string)
            case Tag.Name.int.rawValue:
                if let value = Int64(scalar.string) ?? node.int.map(Int64.init) { return .integer(value) }
                return .string(scalar.string)
            case Tag.Name.float.rawValue:
                // YAML's own spelling when it is JSON (`2.50` stays `2.50`), else the value; `.inf` stays text.
                if let number = JSONNumber(scalar.string) ?? node.float.flatMap(JSONNumber.init) { return .number(number) }
                return .string(scalar.string)
            default: return .string(scalar.string)
            }
        case .sequence(let sequence):
            var values: [JSONValue] = []
            for (index, element) in sequence.enumerated() {
                guard let value = json(element, path: self.path(path, index: index), report: report) else { return nil }
                values.append(value)
            }
            return .array(values)
        case .mapping(let mapping):
            var object: [String: JSONValue] = [:]
            for (key, value) in mapping {
                guard let name = key.scalar?.string else {
                    report(key, path, "keys must be text, got \(describe(key))")
                    return nil
                }
                guard let converted = json(value, path: self.path(path, name), report: report) else { return nil }
                object[name] = converted
            }
            return .object(object)
        case .alias:
            report(node, path, "YAML aliases are not supported here; write the value out")
            return nil
        }
    }

    /// A Yams error (from `Yams.compose`) as one issue at the position libyaml reports: a syntax
    /// error, a repeated key (pointing at the repeat, which is what to delete), a control
    /// character or bad encoding (pointing at the byte).
    public static func syntaxIssue(_ error: any Error, file: String, source: String) -> TemplateIssue {
        func issue(_ position: SourcePosition?, _ message: String) -> TemplateIssue {
            TemplateIssue(file: file, line: position?.line ?? 0, column: position?.column ?? 0, path: "", message: message)
        }
        guard let yamlError = error as? YamlError else { return issue(nil, "could not read the YAML: \(error)") }
        switch yamlError {
        case let .scanner(context, problem, mark, _),
             let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            var message = "YAML syntax error: \(problem)"
            if let context {
                message += " (\(context.text) that starts at line \(context.mark.line), column \(context.mark.column))"
            }
            return issue(SourcePosition(mark), message + "; check the indentation and quoting here")
        case let .duplicatedKeysInMapping(duplicates, context):
            // Yams refuses the whole document and points at the first occurrence.
            let key = duplicates.first ?? "?"
            let first = SourcePosition(context.mark)
            return issue(secondOccurrence(of: key, after: first, in: source) ?? first,
                         "the key '\(key)' appears twice in the same mapping (first on line \(context.mark.line)); remove or rename one of them")
        case let .reader(problem, offset, value, _):
            let position = offset.map { Self.position(ofByte: $0, in: source) }
            let what = value >= 0 && value < 0x20 || value == 0x7f
                ? "control character U+\(String(format: "%04X", value)) is not allowed in YAML; remove it"
                : "the file is not valid UTF-8 text: \(problem)"
            return issue(position, what)
        default:
            return issue(nil, "could not read the YAML: \(yamlError)")
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
