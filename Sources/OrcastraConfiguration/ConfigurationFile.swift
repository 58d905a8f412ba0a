import Foundation
import OrcastraTemplates
import Yams

/// A value from the file or the environment, shaped for the option it sets.
public enum SettingValue: Sendable, Equatable {
    case text(String)
    case flag(Bool)
    case list([String])

    /// As `config show` prints it.
    public var display: String {
        switch self {
        case .text(let text): text
        case .flag(let on): on ? "true" : "false"
        case .list(let values): values.joined(separator: ", ")
        }
    }
}

/// One key of orcastra.yaml, checked against the option it sets.
public struct FileSetting: Sendable, Equatable {
    /// nil at the top of the file; `worker` inside `worker:`.
    public var scope: String?
    /// The option's name, `database-url`.
    public var key: String
    /// As written, `database.url` or `worker.concurrency`.
    public var written: String
    public var line: Int
    public var value: SettingValue
}

/// orcastra.yaml: keys are the long names of flags (`poll-interval: 500ms`); a mapping joins its key
/// and its keys' with `-` (`database: {url: …}` is `database-url`); a top-level `orchestrator:` or
/// `worker:` mapping holds keys for that executable only, over the top-level ones.
public struct ConfigurationFile: Sendable {
    /// The path as given (shown in messages and in `config show`).
    public var path: String
    public var settings: [FileSetting]

    /// The setting for `key` in a command of `scope`: the scope's own, else the top-level one.
    public func setting(for key: String, scope: String?) -> FileSetting? {
        if let scope, let scoped = settings.first(where: { $0.scope == scope && $0.key == key }) { return scoped }
        return settings.first { $0.scope == nil && $0.key == key }
    }

    /// Reads and checks the file; every problem found is reported, with its line.
    public static func load(path: String, universe: ConfigurationUniverse) throws(ConfigurationIssues) -> ConfigurationFile {
        let source: String
        do {
            source = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationIssues([ConfigurationIssue(origin: path, message: "cannot read the configuration file: \((error as NSError).localizedDescription)")])
        }
        return try parse(source, path: path, universe: universe)
    }

    public static func parse(_ source: String, path: String, universe: ConfigurationUniverse) throws(ConfigurationIssues) -> ConfigurationFile {
        let root: Node?
        do {
            root = try Yams.compose(yaml: source)
        } catch {
            let issue = YAMLNodes.syntaxIssue(error, file: path, source: source)
            throw ConfigurationIssues([ConfigurationIssue(origin: path, line: issue.line, message: issue.message)])
        }
        var reader = Reader(path: path, universe: universe)
        if let root, !YAMLNodes.isNull(root) {
            if let mapping = root.mapping {
                reader.read(mapping, prefix: [], written: "", scope: nil, candidates: universe.allOptions)
            } else {
                reader.report(root, "", "the file must be a mapping of keys to values (like `database-url: postgresql://…`), got \(YAMLNodes.describe(root))")
            }
        }
        guard reader.issues.isEmpty else { throw ConfigurationIssues(reader.issues) }
        return ConfigurationFile(path: path, settings: reader.settings)
    }
}

/// Walks the YAML, collecting settings and issues.
private struct Reader {
    var path: String
    var universe: ConfigurationUniverse
    var settings: [FileSetting] = []
    var issues: [ConfigurationIssue] = []

    mutating func report(_ node: Node, _ written: String, _ message: String) {
        issues.append(ConfigurationIssue(origin: path, line: node.mark?.line ?? 0, path: written, message: message))
    }

    mutating func read(_ mapping: Node.Mapping, prefix: [String], written: String, scope: String?, candidates: [OptionSpec]) {
        for (keyNode, value) in mapping {
            guard let key = keyNode.scalar?.string else {
                report(keyNode, written, "keys must be text, got \(YAMLNodes.describe(keyNode))")
                continue
            }
            let path = YAMLNodes.path(written, key)
            if prefix.isEmpty, scope == nil, universe.scopeNames.contains(key) {
                guard let section = value.mapping else {
                    report(value, path, "`\(key):` holds settings for orcastra-\(key) only and must be a mapping, got \(YAMLNodes.describe(value))")
                    continue
                }
                read(section, prefix: [], written: path, scope: key, candidates: universe.options(inScope: key))
                continue
            }
            let name = (prefix + [key]).joined(separator: "-")
            if let nested = value.mapping, candidates.contains(where: { $0.name.hasPrefix(name + "-") }) {
                read(nested, prefix: prefix + [key], written: path, scope: scope, candidates: candidates)
                continue
            }
            guard let option = candidates.first(where: { $0.name == name }) else {
                report(keyNode, path, unknownKeyMessage(name, scope: scope, candidates: candidates))
                continue
            }
            if let earlier = settings.first(where: { $0.scope == scope && $0.key == name }) {
                report(keyNode, path, "sets \(name) again (first set as \(earlier.written) on line \(earlier.line)); keep one of them")
                continue
            }
            if let converted = convert(value, for: option, path: path) {
                settings.append(FileSetting(scope: scope, key: name, written: path, line: keyNode.mark?.line ?? 0, value: converted))
            }
        }
    }

    func unknownKeyMessage(_ name: String, scope: String?, candidates: [OptionSpec]) -> String {
        let names = candidates.map(\.name) + (scope == nil ? universe.scopeNames : [])
        if let match = EditDistance.suggestion(for: name, among: names) {
            return "unknown key '\(name)'; did you mean '\(match)'?"
        }
        let whose = scope.map { "orcastra-\($0)'s flags" } ?? "the flags of orcastra-orchestrator and orcastra-worker"
        return "unknown key '\(name)'; keys are the long names of \(whose) (`orcastra config show` lists them)"
    }

    /// The value as the option takes it; nil after reporting a value of the wrong shape.
    mutating func convert(_ value: Node, for option: OptionSpec, path: String) -> SettingValue? {
        if YAMLNodes.isNull(value) {
            report(value, path, "has no value; give one or remove the key")
            return nil
        }
        if option.isFlag {
            guard value.scalar != nil, value.tag.rawValue == Tag.Name.bool.rawValue, let on = value.bool else {
                report(value, path, "--\(option.name) is a flag: write true or false, got \(YAMLNodes.describe(value))")
                return nil
            }
            return .flag(on)
        }
        if option.isRepeating, let sequence = value.sequence {
            var values: [String] = []
            for element in sequence {
                guard let text = scalarText(element, for: option, path: path) else { return nil }
                values.append(text)
            }
            return .list(values)
        }
        guard let text = scalarText(value, for: option, path: path) else { return nil }
        return option.isRepeating ? .list([text]) : .text(text)
    }

    mutating func scalarText(_ value: Node, for option: OptionSpec, path: String) -> String? {
        guard let scalar = value.scalar else {
            report(value, path, "--\(option.name) takes one value, got \(YAMLNodes.describe(value))")
            return nil
        }
        // An option whose default is a whole number takes whole numbers: say so at the key's line.
        if let fallback = option.defaultValue, Int(fallback) != nil, Int(scalar.string) == nil {
            report(value, path, "--\(option.name) takes a whole number (default \(fallback)), got \(YAMLNodes.describe(value))")
            return nil
        }
        return scalar.string
    }
}
