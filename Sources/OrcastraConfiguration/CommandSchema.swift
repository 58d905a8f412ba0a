import ArgumentParser
import Foundation

/// One option or flag of a command, as swift-argument-parser describes it (`_dumpHelp()`, the same
/// JSON as `--experimental-dump-help`). Reading the parser's own description is what makes the
/// configuration layer generic: a flag added to any command gets the file and environment layers
/// without a line of configuration code.
public struct OptionSpec: Sendable, Hashable {
    /// The preferred long name without dashes (`poll-interval`): the key in orcastra.yaml.
    public var name: String
    /// Every spelling on the command line (`--poll-interval`, `-p`), to see whether argv sets it.
    public var spellings: [String]
    /// A flag takes no value (`true`/`false` in the file); an option takes one.
    public var isFlag: Bool
    /// May be given several times (a list in the file).
    public var isRepeating: Bool
    /// `no-NAME` when the flag has an inversion (`--[no-]NAME`).
    public var inversion: String?
    /// The default the parser reports, else the one the help text names as "(default: …)".
    public var defaultValue: String?
    /// One line of help, for `orcastra config show --json`.
    public var abstract: String

    /// `ORCASTRA_POLL_INTERVAL` for `poll-interval`.
    public var environmentVariable: String {
        "ORCASTRA_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
    }
}

/// A command and its subcommands, from the parser's description of a command type.
public struct CommandSchema: Sendable {
    public var name: String
    public var options: [OptionSpec]
    public var subcommands: [CommandSchema]
    public var defaultSubcommand: String?

    /// Names the parser owns and no file or variable may set.
    static let reserved: Set<String> = ["help", "version", "config", "experimental-dump-help", "generate-completion-script"]

    /// The parser lists a flag with an inversion (`--[no-]colour`, `--enable-x/--disable-x`) as two
    /// flags: keep one key, `colour` (`true` or `false`), that knows its other spelling.
    static func pairingInversions(_ options: [OptionSpec]) -> [OptionSpec] {
        let flags = Set(options.filter(\.isFlag).map(\.name))
        func negative(of name: String) -> String? {
            if flags.contains("no-" + name) { return "no-" + name }
            if name.hasPrefix("enable-"), flags.contains("disable-" + name.dropFirst("enable-".count)) {
                return "disable-" + name.dropFirst("enable-".count)
            }
            return nil
        }
        let negatives = Set(options.filter(\.isFlag).compactMap { negative(of: $0.name) })
        return options.compactMap { option in
            guard option.isFlag else { return option }
            if negatives.contains(option.name) { return nil }
            var paired = option
            if let other = negative(of: option.name) {
                paired.inversion = other
                paired.spellings.append("--" + other)
            }
            return paired
        }
    }

    /// The schema of `type` (a command with its subcommands, or a group of options).
    public static func of(_ type: any ParsableArguments.Type) -> CommandSchema {
        let json = type._dumpHelp()
        guard let dumped = try? JSONDecoder().decode(DumpedTool.self, from: Data(json.utf8)) else {
            preconditionFailure("swift-argument-parser's help dump of \(type) could not be read")
        }
        return CommandSchema(dumped.command)
    }

    init(_ dumped: DumpedCommand) {
        name = dumped.commandName
        options = Self.pairingInversions((dumped.arguments ?? []).compactMap(OptionSpec.init))
        subcommands = (dumped.subcommands ?? []).map(CommandSchema.init)
        defaultSubcommand = dumped.defaultSubcommand
    }

    /// The command type that `arguments` run under `root`, and the names leading to it
    /// (`["worker", "run"]`): words that name a subcommand are followed; a group with a default
    /// subcommand falls to it. Walks the types, so only the leaf's description is ever built.
    public static func leaf(of root: any ParsableCommand.Type, for arguments: [String]) -> (path: [String], command: any ParsableCommand.Type) {
        var path: [String] = []
        var current = root
        for word in arguments {
            if word == "--" { break }
            if word.hasPrefix("-") { continue }
            guard let next = current.configuration.subcommands.first(where: { $0._commandName == word }) else { break }
            path.append(word)
            current = next
        }
        while let next = current.configuration.defaultSubcommand {
            path.append(next._commandName)
            current = next
        }
        return (path, current)
    }

    /// The same walk over a description (for tests and tools that hold one).
    public func leaf(for arguments: [String]) -> (path: [String], command: CommandSchema) {
        var path: [String] = []
        var current = self
        for word in arguments {
            if word == "--" { break }
            if word.hasPrefix("-") { continue }
            guard let next = current.subcommands.first(where: { $0.name == word }) else { break }
            path.append(next.name)
            current = next
        }
        while let name = current.defaultSubcommand, let next = current.subcommands.first(where: { $0.name == name }) {
            path.append(next.name)
            current = next
        }
        return (path, current)
    }
}

extension OptionSpec {
    init?(_ argument: DumpedArgument) {
        guard argument.kind == "option" || argument.kind == "flag" else { return nil }
        let names = argument.names ?? []
        let longNames = names.filter { $0.kind == "long" }.map(\.name)
        guard let preferred = argument.preferredName.flatMap({ $0.kind == "long" ? $0.name : nil }) ?? longNames.first,
              !CommandSchema.reserved.contains(preferred) else { return nil }
        name = preferred
        spellings = names.map { name in
            switch name.kind {
            case "long": "--" + name.name
            default: "-" + name.name
            }
        }
        isFlag = argument.kind == "flag"
        isRepeating = argument.isRepeating ?? false
        inversion = longNames.contains("no-" + preferred) ? "no-" + preferred : nil
        abstract = argument.abstract ?? ""
        defaultValue = argument.defaultValue ?? Self.defaultNamed(in: abstract)
    }

    /// `30s` from "… (default: 30s)" and `info` from "(default: info, or ORCASTRA_LOG_LEVEL)".
    static func defaultNamed(in help: String) -> String? {
        guard let start = help.range(of: "(default: ") else { return nil }
        let rest = help[start.upperBound...]
        let end = rest.firstIndex(where: { $0 == ")" || $0 == "," }) ?? rest.endIndex
        let value = rest[..<end].trimmingCharacters(in: .whitespaces)
        return value.isEmpty ? nil : value
    }
}

// The parts of swift-argument-parser's help dump (ToolInfoV0) read here.
struct DumpedTool: Decodable { var command: DumpedCommand }
struct DumpedCommand: Decodable {
    var commandName: String
    var arguments: [DumpedArgument]?
    var subcommands: [DumpedCommand]?
    var defaultSubcommand: String?
}
struct DumpedArgument: Decodable {
    var kind: String
    var names: [DumpedName]?
    var preferredName: DumpedName?
    var defaultValue: String?
    var isRepeating: Bool?
    var abstract: String?
}
struct DumpedName: Decodable {
    var kind: String
    var name: String
}
