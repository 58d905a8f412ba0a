import Foundation
import Logging
import OrcastraPostgres
import OrcastraStateMachines
import OrcastraTemplates
import ServiceLifecycle
import Tracing

/// A namespace worker: claims enqueued steps with `FOR UPDATE SKIP LOCKED`, runs their handlers
/// (Swift `StepHandler`s or `command`s), keeps their leases alive, and reports outcomes — all through
/// the SQL functions of docs/worker-protocol.md.
///
/// It is a `Service` (swift-service-lifecycle): run it in a `ServiceGroup`, whose graceful shutdown
/// stops claiming at once, lets running handlers finish within the grace period (they see
/// `StepContext.isCancelled`), reports their outcomes and hands back the steps that did not
/// finish. Cancelling `run()` stops at once: handlers are cancelled and their steps handed back.
///
/// The bookkeeping lives in `WorkerState`, a value whose methods say what to do; this actor only
/// performs the I/O: one connection claims, one reports (and refills the freed slots in the same
/// transaction), one heartbeats, keeps the worker's registry row and reads templates, and a
/// listener wakes the claim loop. Each running `TransactionalStepHandler` has a connection of its
/// own from `transactionPool`, holding that step's transaction.
public actor Worker: Service {
    public nonisolated let configuration: WorkerConfiguration
    let registry: HandlerRegistry
    let logger: Logger

    let claimSlot: ConnectionSlot
    let reportSlot: ConnectionSlot
    let heartbeatSlot: ConnectionSlot
    /// One connection per running `TransactionalStepHandler`, each in that step's transaction.
    /// Opened on first use, so a worker without such handlers never connects with it.
    let transactionPool: PostgresPool
    let templates: TemplateCache
    /// The tracer of `InstrumentationSystem` when one was bootstrapped (docs/tracing.md), read once
    /// here: nil means tracing is off and no step attempt makes a span.
    let tracer: (any Tracer)?
    /// Counters and histograms (swift-metrics; no-ops unless the process bootstrapped a backend).
    nonisolated let metrics: WorkerMetrics

    var state: WorkerState
    /// The task running each held step's handler, by lease.
    var handlers: [Lease: Task<Void, Never>] = [:]
    let shutdownFlag = ShutdownFlag()
    /// This process's row in `orcastra.workers`.
    var registration = RegistrationState()

    let wake: AsyncStream<Void>.Continuation
    let wakeups: AsyncStream<Void>
    let reportWake: AsyncStream<Void>.Continuation
    let reportWakeups: AsyncStream<Void>
    let stopRequest: AsyncStream<Void>.Continuation
    let stopRequests: AsyncStream<Void>

    public init(configuration: WorkerConfiguration, handlers: HandlerRegistry = .builtIn,
                logger: Logger = Logger(label: "orcastra.worker")) {
        precondition(configuration.concurrency > 0 && configuration.claimBatch > 0)
        self.configuration = configuration
        registry = handlers
        var logger = logger
        logger[metadataKey: "worker"] = "\(configuration.workerID)"
        logger[metadataKey: "namespace"] = "\(configuration.namespace)"
        self.logger = logger
        claimSlot = ConnectionSlot(conninfo: configuration.conninfo, logger: logger)
        reportSlot = ConnectionSlot(conninfo: configuration.conninfo, logger: logger)
        heartbeatSlot = ConnectionSlot(conninfo: configuration.conninfo, logger: logger)
        transactionPool = PostgresPool(conninfo: configuration.conninfo, maximumConnections: configuration.concurrency, logger: logger,
                                       metricsName: "worker_transactions")
        templates = TemplateCache(slot: heartbeatSlot, namespace: configuration.namespace)
        let tracer = InstrumentationSystem.tracer
        self.tracer = tracer is NoOpTracer ? nil : tracer
        metrics = WorkerMetrics(namespace: configuration.namespace)
        state = WorkerState(concurrency: configuration.concurrency, claimBatch: configuration.claimBatch, lease: configuration.lease)
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (reportWakeups, reportWake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (stopRequests, stopRequest) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks the running worker to shut down gracefully (what a `ServiceGroup` does on SIGTERM).
    public nonisolated func shutDownGracefully() {
        shutdownFlag.set()
        stopRequest.yield()
    }

    /// Works until a graceful shutdown (then drains) or until cancelled (then stops at once).
    public func run() async {
        await withGracefulShutdownHandler {
            await self.work()
        } onGracefulShutdown: {
            self.shutDownGracefully()
        }
    }

    func work() async {
        logger.info("worker started", metadata: ["concurrency": "\(configuration.concurrency)", "lease": "\(configuration.lease)"])
        guard let channel = await channelName() else {
            logger.info("worker stopped before it could start")
            return
        }
        let listener = PostgresListener(conninfo: configuration.listenConninfo ?? PostgresListener.conninfo(forDatabase: configuration.conninfo),
                                        channels: [channel], logger: logger)
        await withDiscardingTaskGroup { group in
            let wake = self.wake
            // Every event wakes the claim loop; `.listening` after a reconnect makes it catch up.
            group.addTask { for await _ in listener { wake.yield() } }
            let pollInterval = configuration.pollInterval
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: pollInterval)
                    wake.yield()
                }
            }
            group.addTask { await self.reportLoop() }
            group.addTask { await self.heartbeatLoop() }
            group.addTask { await self.deadlineLoop() }
            group.addTask { await self.claimLoop() }

            // Until a graceful shutdown is asked for, or the task is cancelled.
            for await _ in stopRequests { break }
            await drain()
            listener.stop()
            group.cancelAll()
        }
        await deregister()
        await claimSlot.close()
        await reportSlot.close()
        await heartbeatSlot.close()
        await transactionPool.shutdown()
        logger.info("worker stopped")
    }

    /// The channel this namespace's work is announced on, as the database names it (long
    /// namespaces get a shortened name). Retries until the database answers; nil if cancelled or
    /// asked to shut down first.
    func channelName() async -> String? {
        var backoff = Backoff()
        while !Task.isCancelled && !shutdownFlag.isSet {
            do {
                let connection = try await claimSlot.get()
                return try await connection.queryRow("SELECT orcastra.namespace_channel(\(configuration.namespace)) AS channel")
                    .decode("channel", as: String.self)
            } catch {
                let delay = backoff.next()
                if let error = error as? PostgresError, error.meansSchemaNotMigrated {
                    logger.error("the database lacks Orcastra's schema, or has an older one than this worker: run `orcastra migrate`. Retrying",
                                 metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                } else {
                    logger.warning("cannot reach the database; retrying", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                }
                await shutdownFlag.sleep(for: delay)  // a SIGTERM ends the wait at once
            }
        }
        return nil
    }

    // MARK: - Shutdown

    /// Graceful: claims nothing more, lets handlers finish and their outcomes be reported within the
    /// grace period, then stops the rest and hands their steps back. When the task was cancelled
    /// instead, there is no grace period.
    func drain() async {
        shutdownFlag.set()
        let grace = Task.isCancelled ? Duration.zero : configuration.gracePeriod
        let deadline = ContinuousClock.now + grace
        state.beginDrain(deadline: deadline)
        wake.yield()  // the claim loop sees the drain and ends
        if !state.isEmpty {
            logger.info("shutting down: waiting for running steps to finish", metadata: ["steps": "\(state.leases.count)", "grace": "\(grace)"])
        }
        while !state.isEmpty, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let unfinished = state.abandonAll()
        guard !unfinished.isEmpty else { return }
        for lease in unfinished { handlers[lease]?.cancel() }
        // The hand-back must reach the database even when our task was cancelled.
        let slot = reportSlot
        let logger = logger
        await Task {
            do {
                let connection = try await slot.get()
                let handedBack = try await connection.query("""
                    SELECT * FROM orcastra.release_steps(\(unfinished.map(\.stepID)), \(unfinished.map(\.token)))
                    """).count
                logger.info("handed back unfinished steps", metadata: ["steps": "\(handedBack)"])
            } catch {
                logger.error("could not hand back unfinished steps; they return when their leases expire", metadata: ["error": "\(error)"])
            }
        }.value
    }

    func handBack(_ leases: [Lease]) async {
        for lease in leases { state.drop(lease) }
        do {
            let connection = try await reportSlot.get()
            _ = try await connection.query("SELECT * FROM orcastra.release_steps(\(leases.map(\.stepID)), \(leases.map(\.token)))")
        } catch {
            logger.error("could not hand back steps; they return when their leases expire", metadata: ["error": "\(error)"])
        }
    }
}
