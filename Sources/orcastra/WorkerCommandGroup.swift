import ArgumentParser
import OrcastraCommandLine

/// `orcastra worker …`: run a worker (the default subcommand, so `orcastra worker --namespace X`
/// works as it always did), or list the workers that run.
struct WorkerCommandGroup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a worker (the default: orcastra worker --namespace NS), or list the running ones.",
        discussion: """
            `orcastra worker --namespace NS …` runs a worker, exactly like `orcastra-worker` \
            (`orcastra worker run --help` lists its options). `orcastra worker list` shows the \
            workers that keep a row in the registry: every Orcastra worker does, from start to a \
            clean exit.

            Examples:
              orcastra worker --namespace examples
              orcastra worker list
              orcastra worker list --namespace billing --all --json
            """,
        subcommands: [WorkerSubcommand.self, WorkerListCommand.self],
        defaultSubcommand: WorkerSubcommand.self
    )
}
