import ArgumentParser
import Foundation
import Logging
import OrcastraPrometheus
import OrcastraTemplates
import OrcastraWorker
import ServiceLifecycle

/// The stock worker's options and its run, shared by `orcastra-worker` and `orcastra worker`.
public struct WorkerOptions: ParsableArguments {
    public init() {}

    @Option(help: "The namespace (worker pool) to serve.")
    public var namespace: String

    @Option(help: "How many steps run at once.")
    public var concurrency = 10

    @Option(help: "The most steps one claim takes (at most --concurrency).")
    public var claimBatch = 10

    @Option(help: "How long a claimed step is held without a heartbeat (heartbeats come every third of it). A dead worker's steps run elsewhere after this. (default: 30s)", transform: DurationArgument.parse)
    public var lease = DurationArgument("30s")

    @Option(help: "How often to look for work when no notification arrives. (default: 1s)", transform: DurationArgument.parse)
    public var pollInterval = DurationArgument("1s")

    @Option(help: "On shutdown, how long running steps may take to finish before they are handed back. (default: 30s)", transform: DurationArgument.parse)
    public var gracePeriod = DurationArgument("30s")

    @Option(help: "The name this worker gives itself in leases and logs (default: host-pid-random).")
    public var workerID: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical (default: info, or ORCASTRA_LOG_LEVEL).")
    public var logLevel: Logger.Level?

    @Option(help: "text (one line per record, for people) or json (one JSON object per line, for log shippers). (default: text, or ORCASTRA_LOG_FORMAT)")
    public var logFormat: LogFormat?

    @Option(help: ArgumentHelp(
        "Serve Prometheus metrics at http://HOST:PORT/metrics (or ORCASTRA_METRICS_ADDRESS), e.g. 127.0.0.1:9464. Without it no port is opened and no metric is recorded.",
        valueName: "host:port"))
    public var metricsAddress: String?

    @OptionGroup public var database: DatabaseOptions

    @OptionGroup public var listen: ListenOptions

    public func validate() throws {
        if let problem = TemplateNames.problem(with: namespace, allowDots: false) {
            throw ValidationError("--namespace '\(namespace)' is invalid because \(problem); namespaces must \(TemplateNames.rule).")
        }
        guard concurrency > 0 else { throw ValidationError("--concurrency must be at least 1.") }
        guard claimBatch > 0 else { throw ValidationError("--claim-batch must be at least 1.") }
        guard lease.duration >= .milliseconds(300), lease.duration <= .seconds(86_400) else {
            throw ValidationError("--lease must be between 300ms and 24h (heartbeats come every third of it).")
        }
        guard gracePeriod.duration <= .seconds(86_400) else { throw ValidationError("--grace-period must be at most 24h.") }
        guard pollInterval.duration > .zero else { throw ValidationError("--poll-interval must be longer than 0s.") }
        try LogFormat.validateEnvironment()
        if let address = resolvedMetricsAddress {
            do { _ = try ListenAddress(address) } catch {
                throw ValidationError("\(metricsAddress == nil ? "ORCASTRA_METRICS_ADDRESS" : "--metrics-address"): \(error)")
            }
        }
    }

    var resolvedMetricsAddress: String? {
        metricsAddress ?? ProcessInfo.processInfo.environment["ORCASTRA_METRICS_ADDRESS"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Runs a worker until SIGTERM or SIGINT.
    public func runWorker() async throws {
        Lifecycle.bootstrapLogging(level: logLevel, format: logFormat)
        var services: [any Service] = []
        if let address = resolvedMetricsAddress {
            let listen = try ListenAddress(address)
            PrometheusExport.bootstrap()
            services.append(MetricsServer(host: listen.host, port: listen.port))
        }
        var configuration = WorkerConfiguration(conninfo: try await database.conninfo(), namespace: namespace, workerID: workerID)
        configuration.listenConninfo = try listen.listenConninfo()
        configuration.concurrency = concurrency
        configuration.claimBatch = min(claimBatch, concurrency)
        configuration.lease = lease.duration
        configuration.pollInterval = pollInterval.duration
        configuration.gracePeriod = gracePeriod.duration
        // Before the worker exists: it reads the tracer once (docs/tracing.md).
        let tracing = try TracingSetup.bootstrap(serviceName: "orcastra-worker")
        let worker = Worker(configuration: configuration)
        try await Lifecycle.runUntilSignalled((tracing.map { [$0] } ?? []) + [worker] + services, logger: Logger(label: "orcastra.worker"))
    }

    static let discussion = """
            Claims enqueued steps of NAMESPACE with SELECT … FOR UPDATE SKIP LOCKED, runs their \
            handlers — `command` steps, and the built-in handlers \(HandlerRegistry.builtIn.names.joined(separator: ", ")) — \
            keeps their leases alive and records their outcomes. SIGTERM or SIGINT stops claiming, \
            lets running steps finish within --grace-period (Swift handlers see \
            StepContext.isCancelled) and hands back the rest; a second signal kills every running \
            command and exits at once (status 143 for SIGTERM, 130 for SIGINT).

            To run Swift handlers, build your own worker with the OrcastraWorker library \
            (see Examples/ and the README).

            Examples:
              orcastra-worker --namespace examples
              orcastra-worker --namespace billing --concurrency 32 --lease 1m
            """
}

/// `orcastra-worker`: the stock worker, which runs `command` steps and the built-in handlers.
public struct WorkerCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "orcastra-worker", abstract: "Run the steps of one namespace.", discussion: WorkerOptions.discussion,
        version: OrcastraVersion.current)
    @OptionGroup public var options: WorkerOptions
    public init() {}
    public func run() async throws { try await options.runWorker() }
}

/// `orcastra worker [run]`: the same worker as `orcastra-worker`, from the main binary. It is the
/// default subcommand of `orcastra worker`, so `orcastra worker --namespace X` runs it.
public struct WorkerSubcommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the steps of one namespace (same as orcastra-worker).",
        discussion: WorkerOptions.discussion)
    @OptionGroup public var options: WorkerOptions
    public init() {}
    public func run() async throws { try await options.runWorker() }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
