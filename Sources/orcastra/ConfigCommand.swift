import ArgumentParser
import Foundation
import OrcastraCommandLine
import OrcastraConfiguration

/// `orcastra config …`: the configuration every executable reads (docs/configuration.md).
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Show the effective configuration (flags > ORCASTRA_* > orcastra.yaml > defaults).",
        subcommands: [ConfigShowCommand.self],
        defaultSubcommand: ConfigShowCommand.self
    )
}

/// `orcastra config show`: each setting's effective value and where it came from, secrets masked.
struct ConfigShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print every setting's effective value and where it came from (flag, env, file:line, default).",
        discussion: """
            Every Orcastra executable reads its flags, then ORCASTRA_* variables (ORCASTRA_ and the \
            flag's name in capitals with _ for -, e.g. ORCASTRA_POLL_INTERVAL; DATABASE_URL after \
            ORCASTRA_DATABASE_URL), then orcastra.yaml (--config FILE, ORCASTRA_CONFIG, or \
            ./orcastra.yaml when it exists), then its defaults. Settings are shown for the \
            orchestrator (orcastra-orchestrator, orcastra orchestrator), the worker (orcastra-worker, \
            orcastra worker) and the other commands (cli: the database only). Passwords in \
            connection strings and values of keys naming a token, password or secret are masked.

            Flags after `--` are read as if given to the executable, to preview a command line.

            Examples:
              orcastra config show
              orcastra config show --for worker --json
              ORCASTRA_CONFIG=/etc/orcastra.yaml orcastra config show --for orchestrator -- --poll-interval 250ms
            """)

    enum Scope: String, ExpressibleByArgument, CaseIterable {
        case orchestrator, worker, cli
    }

    @Option(name: .customLong("for"), help: "Only the settings of: orchestrator, worker or cli (default: all three).")
    var scope: Scope?

    @Flag(help: "Print JSON: the file and, per scope, each setting's key, value, source and variable.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    @Argument(parsing: .postTerminator, help: "Flags of the executable to preview (after --).")
    var flags: [String] = []

    func run() throws {
        let universe = ConfigurationUniverse.orcastra
        let context = ConfiguredLaunch.current
        // The command line as typed: the layers' own additions are not flags.
        let typed = (context?.arguments ?? []).filter { $0 != "--" }
        let environment = context?.environment ?? ProcessInfo.processInfo.environment
        let scopes = scope.map { [$0] } ?? Scope.allCases
        var shown: [(scope: Scope, settings: [ResolvedSetting])] = []
        for scope in scopes {
            let name = scope == .cli ? nil : scope.rawValue
            let resolution = try SettingResolver.resolve(options: universe.options(inScope: name), arguments: typed,
                                                         environment: environment, file: context?.file, scope: name)
            shown.append((scope, resolution.settings))
        }
        if json {
            printJSON(shown, context: context)
        } else {
            printText(shown, context: context)
        }
    }

    static func masked(_ setting: ResolvedSetting) -> String? {
        setting.value.map { SecretMasking.masked($0, forKey: setting.option.name) }
    }

    static func sourceText(_ source: SettingSource) -> String {
        switch source {
        case .file(_, _, let written): "\(source.label) (\(written))"
        default: source.label
        }
    }

    func printText(_ shown: [(scope: Scope, settings: [ResolvedSetting])], context: LaunchContext?) {
        if let file = context?.file {
            print("Configuration file: \(file.path) (found by \(context?.fileFoundBy ?? "?"))")
        } else {
            print("Configuration file: none (--config FILE, ORCASTRA_CONFIG or ./orcastra.yaml)")
        }
        let used = [Scope.orchestrator: "orcastra-orchestrator, orcastra orchestrator",
                    .worker: "orcastra-worker, orcastra worker", .cli: "every other orcastra command"]
        for (scope, settings) in shown {
            print("")
            print("\(scope.rawValue) (\(used[scope] ?? ""))")
            let keyWidth = settings.map(\.option.name.count).max() ?? 0
            let values = settings.map { Self.masked($0) ?? "-" }
            let valueWidth = min(values.map(\.count).max() ?? 0, 48)
            for (setting, value) in zip(settings, values) {
                let key = setting.option.name.padding(toLength: keyWidth, withPad: " ", startingAt: 0)
                let shownValue = value.count >= valueWidth ? value : value.padding(toLength: valueWidth, withPad: " ", startingAt: 0)
                print("  \(key)  \(shownValue)  \(Self.sourceText(setting.source))")
            }
        }
        if shown.contains(where: { $0.settings.contains { $0.option.name == "database-url" && $0.value == nil } }) {
            print("")
            print(Self.withoutDatabaseURL(environment: context?.environment ?? ProcessInfo.processInfo.environment))
        }
    }

    /// Where a command connects when no database-url is set ("Where the database is", docs/cli.md):
    /// "unset" alone hid that it still connects somewhere.
    static func withoutDatabaseURL(environment: [String: String]) -> String {
        let libpq = DatabaseOptions.libpqVariablesSet(in: environment)
        if !libpq.isEmpty {
            return "Without database-url, commands connect with libpq's own variables (\(libpq.joined(separator: ", ")))."
        }
        return "Without database-url, commands use the local development database in \(DevDatabase.directory.path), "
            + "starting it when needed (`orcastra dev-db status`); it is for development only (docs/security.md)."
    }

    func printJSON(_ shown: [(scope: Scope, settings: [ResolvedSetting])], context: LaunchContext?) {
        var file: Any = NSNull()
        if let loaded = context?.file {
            file = ["path": loaded.path, "foundBy": context?.fileFoundBy ?? ""]
        }
        let scopes: [[String: Any]] = shown.map { scope, settings in
            ["scope": scope.rawValue,
             "settings": settings.map { setting -> [String: Any] in
                 var entry: [String: Any] = [
                     "key": setting.option.name,
                     "value": Self.masked(setting) as Any? ?? NSNull(),
                     "source": setting.source.label,
                     "environmentVariable": setting.option.environmentVariable,
                 ]
                 if case .file(_, let line, let written) = setting.source {
                     entry["line"] = line
                     entry["written"] = written
                 }
                 return entry
             }]
        }
        let object: [String: Any] = ["file": file, "scopes": scopes]
        if let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) {
            print(String(decoding: data, as: UTF8.self))
        }
    }
}
