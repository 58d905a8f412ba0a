import ArgumentParser
import Foundation
import Logging
import OrcastraConfiguration
import OrcastraOrchestrator
import ServiceLifecycle

/// The orchestrator's options and its run, shared by `orcastra-orchestrator` and `orcastra orchestrator`.
public struct OrchestratorOptions: ParsableArguments {
    public init() {}

    @Option(help: "How often to look for due work when no notification arrives. (default: 1s)", transform: DurationArgument.parse)
    public var pollInterval = DurationArgument("1s")

    @Option(help: "The most rows one chore handles per transaction.")
    public var batchLimit = 1000

    @Option(help: "The most schedules fired per transaction: smaller batches let several orchestrators share a burst of due schedules and make each task visible sooner; larger ones commit less often.")
    public var scheduleBatch = 200

    public func validate() throws {
        try LogFormat.validateEnvironment()
        guard batchLimit > 0 else { throw ValidationError("--batch-limit must be at least 1.") }
        guard (1...1000).contains(scheduleBatch) else { throw ValidationError("--schedule-batch must be between 1 and 1000.") }
    }

    @Option(help: "trace, debug, info, notice, warning, error or critical (default: info, or ORCASTRA_LOG_LEVEL).")
    public var logLevel: Logger.Level?

    @OptionGroup(title: "Retention") public var retention: RetentionOptions
    @Option(help: "text (one line per record, for people) or json (one JSON object per line, for log shippers). (default: text, or ORCASTRA_LOG_FORMAT)")
    public var logFormat: LogFormat?

    @OptionGroup public var database: DatabaseOptions

    @OptionGroup public var listen: ListenOptions

    /// Runs an orchestrator until SIGTERM or SIGINT, with `additionalServices` (given the
    /// database's conninfo) in the same service group: `orcastra-orchestrator` adds the HTTP API.
    public func runOrchestrator(additionalServices: @Sendable (String) throws -> [any Service] = { _ in [] }) async throws {
        Lifecycle.bootstrapLogging(level: logLevel, format: logFormat)
        let retention = try self.retention.resolved()
        var configuration = OrchestratorConfiguration(conninfo: try await database.conninfo())
        configuration.retentionDefaults = retention.defaults
        configuration.pruneInterval = retention.interval
        configuration.pruneBatchRows = retention.batchRows
        configuration.historyWeeksAhead = self.retention.historyWeeksAhead
        configuration.historyPartitionInterval = self.retention.historyMaintenanceInterval.duration
        configuration.listenConninfo = try listen.listenConninfo()
        configuration.pollInterval = pollInterval.duration
        configuration.batchLimit = batchLimit
        configuration.scheduleBatchLimit = scheduleBatch
        // First in the group, so it is shut down last and sends the spans still batched.
        let tracing = try TracingSetup.bootstrap(serviceName: "orcastra-orchestrator")
        let orchestrator = Orchestrator(configuration: configuration)
        let services: [any Service] = (tracing.map { [$0] } ?? []) + [orchestrator] + (try additionalServices(configuration.conninfo))
        try await Lifecycle.runUntilSignalled(services, logger: Logger(label: "orcastra.orchestrator"))
    }

    static let discussion = """
            Starts scheduled tasks when their time comes, puts failed steps back in line when \
            their backoff ends, recovers steps whose worker stopped heartbeating (their lost \
            attempt is recorded), removes workers not heard from for a day from the worker \
            registry (`orcastra worker list`), and deletes finished tasks whose retention ran out \
            (a template's `retention:`, else --retention-*: 7d complete and cancelled, 30d error and \
            resolved_manually by default), a batch of at most --prune-batch-rows rows per transaction. Run as many as you like: they share the work through row locks \
            and need no leader. SIGTERM or SIGINT stops it at once: a chore in flight is rolled back and done by \
            another orchestrator, or by this one when it starts again.

            Examples:
              orcastra-orchestrator
              orcastra-orchestrator --poll-interval 500ms --database-url postgresql://orcastra@db/orcastra
              orcastra-orchestrator --retention-complete 2d --retention-error forever
            """
}

/// `orcastra-orchestrator`: starts scheduled tasks, enqueues due retries, recovers lost steps.
public struct OrchestratorCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "orcastra-orchestrator", abstract: "Run Orcastra's orchestrator.", discussion: OrchestratorOptions.discussion,
        version: OrcastraVersion.current)
    @OptionGroup public var options: OrchestratorOptions
    public init() {}
    public func run() async throws { try await options.runOrchestrator() }
}

/// `orcastra orchestrator`: the same orchestrator as `orcastra-orchestrator`, from the main binary,
/// without the HTTP API (this binary does not link the server).
public struct OrchestratorSubcommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "orchestrator",
        abstract: "Run Orcastra's orchestrator (as orcastra-orchestrator does, but without the HTTP API: for --http-address run orcastra-orchestrator).",
        discussion: OrchestratorOptions.discussion)
    @OptionGroup public var options: OrchestratorOptions
    @OptionGroup(visibility: .hidden) var http: RefusedHTTPOptions
    public init() {}

    public func validate() throws {
        guard let setting = http.given else { return }
        let origin = ConfiguredLaunch.origin(ofOption: setting) ?? "--\(setting)"
        throw ValidationError("""
            `orcastra orchestrator` does not serve the HTTP API, but \(origin) asks for it. To serve it, run \
            `orcastra-orchestrator` (built beside orcastra, e.g. .build/debug/orcastra-orchestrator) with the same options; \
            to run without it, remove the setting.
            """)
    }

    public func run() async throws { try await options.runOrchestrator() }
}

/// The HTTP settings `orcastra orchestrator` reads only to refuse them. They are keys of the
/// orchestrator's scope (orcastra.yaml, `ORCASTRA_HTTP_ADDRESS`, …), and an orchestrator that
/// skipped them would run without the API and say nothing.
struct RefusedHTTPOptions: ParsableArguments {
    @Option(help: "Refused: only orcastra-orchestrator serves the HTTP API.") var httpAddress: String?
    @Option(help: "Refused: only orcastra-orchestrator serves the HTTP API.") var tlsCert: String?
    @Option(help: "Refused: only orcastra-orchestrator serves the HTTP API.") var tlsKey: String?

    /// The first HTTP setting given, by its key.
    var given: String? {
        [("http-address", httpAddress), ("tls-cert", tlsCert), ("tls-key", tlsKey)].first { !($0.1 ?? "").isEmpty }?.0
    }
}
