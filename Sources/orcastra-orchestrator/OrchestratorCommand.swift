import ArgumentParser
import Foundation
import Logging
import OrcastraCommandLine
import OrcastraOrchestrator

/// `orcastra-orchestrator`: starts scheduled tasks, enqueues due retries, recovers lost steps.
@main
struct OrchestratorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orcastra-orchestrator",
        abstract: "Run Orcastra's orchestrator.",
        discussion: """
            Starts scheduled tasks when their time comes, puts failed steps back in line when \
            their backoff ends, and recovers steps whose worker stopped heartbeating (their lost \
            attempt is recorded). Run as many as you like: they share the work through row locks \
            and need no leader. SIGTERM or SIGINT stops it after the current round.

            Examples:
              orcastra-orchestrator
              orcastra-orchestrator --poll-interval 500ms --database-url postgresql://orcastra@db/orcastra
            """
    )

    @Option(help: "How often to look for due work when no notification arrives.")
    var pollInterval = DurationArgument("1s")

    @Option(help: "The most rows one chore handles per transaction.")
    var batchLimit = 1000

    @Option(help: "trace, debug, info, notice, warning, error or critical (default: info, or ORCASTRA_LOG_LEVEL).")
    var logLevel: Logger.Level?

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        Lifecycle.bootstrapLogging(level: logLevel)
        var configuration = OrchestratorConfiguration(conninfo: try await database.conninfo())
        configuration.pollInterval = pollInterval.duration
        configuration.batchLimit = batchLimit
        let orchestrator = Orchestrator(configuration: configuration)
        await Lifecycle.runUntilSignalled { await orchestrator.run() }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
