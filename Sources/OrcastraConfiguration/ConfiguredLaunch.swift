import ArgumentParser
import Foundation
import Synchronization

/// What the running process read its configuration from, for `orcastra config show` and messages.
public struct LaunchContext: Sendable {
    /// The command line as typed, before the layers added flags.
    public var arguments: [String]
    public var environment: [String: String]
    /// The configuration file read, if any.
    public var file: ConfigurationFile?
    /// How the file was found: `--config`, `ORCASTRA_CONFIG` or `./orcastra.yaml`.
    public var fileFoundBy: String?
    /// The settings of the command that runs.
    public var resolution: Resolution?
}

/// Parses an executable's command line with the configuration layers under it:
/// flag > `ORCASTRA_*` > orcastra.yaml > default.
public enum ConfiguredLaunch {
    private static let state = Mutex<LaunchContext?>(nil)

    /// The context of the running process, once `parse` ran.
    public static var current: LaunchContext? { state.withLock { $0 } }

    /// EX_CONFIG from sysexits.h: the configuration is wrong.
    public static let configurationExitCode: Int32 = 78

    /// Parses `arguments` for `root` after adding what the environment and the file set; prints
    /// errors (a parser message about a value from the file or a variable names its origin) and
    /// exits as the parser would. `scopeOf` names the scope of a command from its subcommand path.
    public static func parse(_ root: any ParsableCommand.Type, universe: ConfigurationUniverse,
                             scopeOf: ([String]) -> String?,
                             arguments: [String] = Array(CommandLine.arguments.dropFirst()),
                             environment: [String: String] = ProcessInfo.processInfo.environment) -> any ParsableCommand {
        // `--help`, `-h`, `--version` and `help` show the same whatever the layers hold: parse as typed.
        let typed = arguments.prefix { $0 != "--" }
        if typed.first == "help" || typed.contains(where: { ["--help", "-h", "--version", "--experimental-dump-help"].contains($0) }) {
            do { return try root.parseAsRoot(arguments) } catch { root.exit(withError: error) }
        }
        let resolution: Resolution
        switch Result(catching: { () throws(ConfigurationIssues) -> Resolution in
            try prepare(root, universe: universe, scopeOf: scopeOf, arguments: arguments, environment: environment)
        }) {
        case .success(let prepared): resolution = prepared
        case .failure(let issues):
            FileHandle.standardError.write(Data(issues.issues.map { "error: \($0)\n" }.joined().utf8))
            exit(configurationExitCode)
        }
        do {
            return try root.parseAsRoot(resolution.arguments)
        } catch {
            if root.exitCode(for: error) != .success, let origin = resolution.origin(ofMessage: root.message(for: error)) {
                FileHandle.standardError.write(Data("error: \(origin): \(root.message(for: error))\n".utf8))
                exit(root.exitCode(for: error).rawValue)
            }
            root.exit(withError: error)
        }
    }

    /// Where the running command's value of `--NAME` came from when not from its command line:
    /// `ORCASTRA_DATABASE_URL`, `orcastra.yaml:3 (database.url)`; nil for a flag or a default.
    public static func origin(ofOption name: String) -> String? {
        guard let setting = current?.resolution?.settings.first(where: { $0.option.name == name }) else { return nil }
        switch setting.source {
        case .environment(let variable): return variable
        case .file(let path, let line, let written): return "\(path):\(line) (\(written))"
        default: return nil
        }
    }

    /// Finds and reads the file, resolves the command's options and records the context.
    public static func prepare(_ root: any ParsableCommand.Type, universe: ConfigurationUniverse, scopeOf: ([String]) -> String?,
                               arguments: [String], environment: [String: String]) throws(ConfigurationIssues) -> Resolution {
        var context = LaunchContext(arguments: arguments, environment: environment)
        defer { state.withLock { $0 = context } }
        if let (path, foundBy) = locateFile(arguments: arguments, environment: environment) {
            context.fileFoundBy = foundBy
            context.file = try ConfigurationFile.load(path: path, universe: universe)
        }
        let (path, leafType) = CommandSchema.leaf(of: root, for: arguments)
        let leaf = CommandSchema.of(leafType)
        let scope = scopeOf(path)
        // A command of a scope takes every option it has (they are the scope's); any other command
        // only the shared ones.
        let taken = scope == nil ? Set(universe.shared.map(\.name)) : Set(leaf.options.map(\.name))
        let resolution: Resolution
        do {
            resolution = try SettingResolver.resolve(options: leaf.options.filter { taken.contains($0.name) }, arguments: arguments,
                                                     environment: environment, file: context.file, scope: scope)
        } catch {
            throw ConfigurationIssues([error])
        }
        context.resolution = resolution
        return resolution
    }

    /// `--config FILE`, else `ORCASTRA_CONFIG`, else `./orcastra.yaml` when it exists.
    public static func locateFile(arguments: [String], environment: [String: String]) -> (path: String, foundBy: String)? {
        let explicit = arguments.prefix { $0 != "--" }
        var fromFlag: String?
        for (index, word) in explicit.enumerated() {
            if word == "--config", index + 1 < explicit.count { fromFlag = explicit[explicit.startIndex + index + 1] }
            if word.hasPrefix("--config=") { fromFlag = String(word.dropFirst("--config=".count)) }
        }
        if let fromFlag { return (fromFlag, "--config") }
        if let variable = environment["ORCASTRA_CONFIG"], !variable.isEmpty { return (variable, "ORCASTRA_CONFIG") }
        if FileManager.default.fileExists(atPath: "orcastra.yaml") { return ("orcastra.yaml", "./orcastra.yaml") }
        return nil
    }
}
