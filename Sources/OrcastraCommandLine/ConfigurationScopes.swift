import ArgumentParser
import Foundation
import OrcastraConfiguration

/// Which options orcastra.yaml and `ORCASTRA_*` set, for every Orcastra executable alike (so a
/// worker accepts a file written for the orchestrator too). A new option in one of these option
/// groups is a key at once; a new option group of a long-running executable is added here.
extension ConfigurationUniverse {
    public static let orcastra = ConfigurationUniverse(
        shared: [DatabaseOptions.self],
        scopes: [(name: "orchestrator", types: [OrchestratorServerOptions.self]),
                 (name: "worker", types: [WorkerOptions.self])])
}

/// The executables' entry: parse with the configuration layers.
public enum OrcastraLaunch {
    /// `orcastra-orchestrator` and `orcastra-worker`: every command of `root` is of `scope`.
    public static func parse<Command: ParsableCommand>(_ root: Command.Type, scope: String) -> Command {
        var parsed = ConfiguredLaunch.parse(root, universe: .orcastra, scopeOf: { _ in scope })
        if let command = parsed as? Command { return command }
        // `help` (the parser's own subcommand): it prints the help and ends with a clean exit.
        do {
            try parsed.run()
            exit(0)
        } catch {
            Command.exit(withError: error)
        }
    }

    /// Ends `orcastra-orchestrator` or `orcastra-worker` after `error`. Bad input found only when
    /// the command runs (a `--database-url` libpq cannot read) is a usage error, exit 64, like the
    /// parser's own refusals and like `orcastra`; anything else is the parser's usual exit 1.
    public static func end<Command: ParsableCommand>(_ root: Command.Type, withError error: any Error) -> Never {
        if let error = error as? MalformedConnectionString {
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            Command.exit(withError: ExitCode(64))
        }
        Command.exit(withError: error)
    }

    /// `orcastra`: `orcastra orchestrator` and `orcastra worker [run]` are of their scopes; every
    /// other command takes only the shared settings (the database).
    public static func parseAsRoot(_ root: any ParsableCommand.Type,
                                   arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> any ParsableCommand {
        ConfiguredLaunch.parse(root, universe: .orcastra, scopeOf: scope(ofPath:), arguments: arguments)
    }

    public static func scope(ofPath path: [String]) -> String? {
        switch path {
        case ["orchestrator"]: "orchestrator"
        case ["worker", "run"]: "worker"
        default: nil
        }
    }
}
