/// Where an option's effective value came from.
public enum SettingSource: Sendable, Equatable {
    case flag
    case environment(variable: String)
    case file(path: String, line: Int, written: String)
    case defaultValue
    case unset

    /// `flag`, `env:ORCASTRA_X`, `file:orcastra.yaml:7`, `default`, `unset`.
    public var label: String {
        switch self {
        case .flag: "flag"
        case .environment(let variable): "env:\(variable)"
        case .file(let path, let line, _): "file:\(path):\(line)"
        case .defaultValue: "default"
        case .unset: "unset"
        }
    }
}

/// One option's effective value and its origin.
public struct ResolvedSetting: Sendable, Equatable {
    public var option: OptionSpec
    /// nil when nothing sets it and it has no default.
    public var value: String?
    public var source: SettingSource
}

/// The command line to parse, with the environment's and the file's values added as flags.
public struct Resolution: Sendable {
    public var arguments: [String]
    public var settings: [ResolvedSetting]

    /// The value's origin for a parser message about `--NAME` of an added flag, if any:
    /// `orcastra.yaml:7 (worker.concurrency)` or `ORCASTRA_CONCURRENCY`.
    public func origin(ofMessage message: String) -> String? {
        for setting in settings {
            let origin: String
            switch setting.source {
            case .environment(let variable): origin = variable
            case .file(let path, let line, let written): origin = "\(path):\(line) (\(written))"
            default: continue
            }
            let names = [setting.option.name] + (setting.option.inversion.map { [$0] } ?? [])
            if names.contains(where: { Self.mentions(message, "--" + $0) }) { return origin }
        }
        return nil
    }

    static func mentions(_ message: String, _ spelling: String) -> Bool {
        var rest = message[...]
        while let range = rest.range(of: spelling) {
            let next = rest[range.upperBound...].first
            if next.map({ !($0.isLetter || $0.isNumber || $0 == "-") }) ?? true { return true }
            rest = rest[range.upperBound...]
        }
        return false
    }
}

/// flag > `ORCASTRA_*` > orcastra.yaml > default, for each option a command takes from the layers.
public enum SettingResolver {
    /// Older variables that keep working, after the `ORCASTRA_*` one.
    public static let aliases: [String: [String]] = ["database-url": ["DATABASE_URL"]]

    public static func resolve(options: [OptionSpec], arguments: [String], environment: [String: String],
                               file: ConfigurationFile?, scope: String?) throws(ConfigurationIssue) -> Resolution {
        let explicit = Array(arguments.prefix { $0 != "--" })
        var added: [String] = []
        var settings: [ResolvedSetting] = []
        for option in options {
            if let value = valueOnCommandLine(option, in: explicit) {
                settings.append(ResolvedSetting(option: option, value: value, source: .flag))
                continue
            }
            let variables = [option.environmentVariable] + (aliases[option.name] ?? [])
            if let variable = variables.first(where: { !(environment[$0] ?? "").isEmpty }), let text = environment[variable] {
                let value = try environmentValue(text, variable: variable, option: option)
                added += flags(for: option, value)
                settings.append(ResolvedSetting(option: option, value: value.display, source: .environment(variable: variable)))
                continue
            }
            if let setting = file?.setting(for: option.name, scope: scope), let file {
                added += flags(for: option, setting.value)
                settings.append(ResolvedSetting(option: option, value: setting.value.display,
                                                source: .file(path: file.path, line: setting.line, written: setting.written)))
                continue
            }
            settings.append(ResolvedSetting(option: option, value: option.defaultValue, source: option.defaultValue == nil ? .unset : .defaultValue))
        }
        var result = arguments
        let insertion = result.firstIndex(of: "--") ?? result.endIndex
        result.insert(contentsOf: added, at: insertion)
        return Resolution(arguments: result, settings: settings)
    }

    /// The last value argv gives the option (`--x v`, `--x=v`, a flag's `--x`/`--no-x`), if it gives one.
    static func valueOnCommandLine(_ option: OptionSpec, in arguments: [String]) -> String? {
        var found: String?
        for (index, word) in arguments.enumerated() {
            if let inversion = option.inversion, word == "--" + inversion { found = "false"; continue }
            for spelling in option.spellings where spelling != option.inversion.map({ "--" + $0 }) {
                if word == spelling {
                    found = option.isFlag ? "true" : (index + 1 < arguments.count ? arguments[index + 1] : "")
                } else if !option.isFlag, word.hasPrefix(spelling + "=") {
                    found = String(word.dropFirst(spelling.count + 1))
                }
            }
        }
        return found
    }

    static func environmentValue(_ text: String, variable: String, option: OptionSpec) throws(ConfigurationIssue) -> SettingValue {
        guard option.isFlag else { return option.isRepeating ? .list([text]) : .text(text) }
        switch text.lowercased() {
        case "1", "true", "yes", "on": return .flag(true)
        case "0", "false", "no", "off": return .flag(false)
        default:
            throw ConfigurationIssue(origin: variable, message: "--\(option.name) is a flag: set \(variable) to true or false (or 1 or 0), not '\(text)'")
        }
    }

    /// `--name=value` (never split, so a value starting with `-` stays a value), once per list item.
    static func flags(for option: OptionSpec, _ value: SettingValue) -> [String] {
        switch value {
        case .flag(true): ["--" + option.name]
        case .flag(false): option.inversion.map { ["--" + $0] } ?? []
        case .text(let text): ["--\(option.name)=\(text)"]
        case .list(let values): values.map { "--\(option.name)=\($0)" }
        }
    }
}
