import ArgumentParser
import Foundation
import Logging
import OrcastraCommandLine
import OrcastraWorker

/// `orcastra-worker`: the stock worker, which runs `command` steps and the built-in handlers.
@main
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orcastra-worker",
        abstract: "Run the steps of one namespace.",
        discussion: """
            Claims enqueued steps of NAMESPACE with SELECT … FOR UPDATE SKIP LOCKED, runs their \
            handlers — `command` steps, and the built-in handlers orcastra.noop and orcastra.echo — \
            keeps their leases alive and records their outcomes. SIGTERM or SIGINT stops claiming, \
            lets running steps finish within --grace-period and hands back the rest; a second signal \
            exits at once.

            To run Swift handlers, build your own worker with the OrcastraWorker library \
            (see Examples/ and the README).

            Examples:
              orcastra-worker --namespace examples
              orcastra-worker --namespace billing --concurrency 32 --lease 1m
            """
    )

    @Option(help: "The namespace (worker pool) to serve.")
    var namespace: String

    @Option(help: "How many steps run at once.")
    var concurrency = 10

    @Option(help: "The most steps one claim takes (at most --concurrency).")
    var claimBatch = 10

    @Option(help: "How long a claimed step is held without a heartbeat (heartbeats come every third of it). A dead worker's steps run elsewhere after this.")
    var lease = DurationArgument("30s")

    @Option(help: "How often to look for work when no notification arrives.")
    var pollInterval = DurationArgument("1s")

    @Option(help: "On shutdown, how long running steps may take to finish before they are handed back.")
    var gracePeriod = DurationArgument("30s")

    @Option(help: "The name this worker gives itself in leases and logs (default: host-pid-random).")
    var workerID: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical (default: info, or ORCASTRA_LOG_LEVEL).")
    var logLevel: Logger.Level?

    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        guard concurrency > 0 else { throw ValidationError("--concurrency must be at least 1.") }
        guard claimBatch > 0 else { throw ValidationError("--claim-batch must be at least 1.") }
    }

    func run() async throws {
        Lifecycle.bootstrapLogging(level: logLevel)
        var configuration = WorkerConfiguration(conninfo: try await database.conninfo(), namespace: namespace, workerID: workerID)
        configuration.concurrency = concurrency
        configuration.claimBatch = min(claimBatch, concurrency)
        configuration.lease = lease.duration
        configuration.pollInterval = pollInterval.duration
        configuration.gracePeriod = gracePeriod.duration
        let worker = Worker(configuration: configuration)
        await Lifecycle.runUntilSignalled { await worker.run() }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
