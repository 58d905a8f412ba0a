import Foundation
import Logging
import OrcastraMetrics
import OrcastraPostgres
import OrcastraStateMachines
import OrcastraTemplates
import ServiceLifecycle
import Synchronization

/// How an orchestrator runs.
public struct OrchestratorConfiguration: Sendable {
    public var conninfo: String
    /// Where the orchestrator LISTENs, when not at `conninfo` (see `WorkerConfiguration.listenConninfo`).
    public var listenConninfo: String?
    /// How often it looks for due work when nothing woke it.
    public var pollInterval: Duration = .seconds(1)
    /// The most rows one chore handles per transaction; more are taken in the next round at once.
    public var batchLimit: Int = 1000
    /// How often it sweeps for live tasks that nothing will settle (a safety net).
    public var stalledSweepInterval: Duration = .seconds(30)
    /// Registry rows of workers not heard from for this long are deleted (`orcastra.prune_workers`).
    public var workerRetention: Duration = .seconds(86_400)
    /// How often it prunes the worker registry (its first round does too).
    public var workerPruneInterval: Duration = .seconds(60)
    /// The most schedules fired per transaction: small enough that several orchestrators share a
    /// burst of due schedules (each locks its own batch) and each task is made soon after its time.
    public var scheduleBatchLimit: Int = 200
    /// How long finished tasks are kept when their template does not say (`retention:` in the
    /// template wins, state by state); a state left nil here is kept forever.
    public var retentionDefaults: RetentionPolicy = .orchestratorDefaults
    /// How often expired tasks are looked for (the first time at start); nil turns pruning off.
    public var pruneInterval: Duration? = .seconds(60)
    /// The most rows one pruning transaction deletes (a task with everything it owns counts whole;
    /// a single task larger than this is still deleted, alone).
    public var pruneBatchRows: Int = 10_000
    /// The least rest between two pruning batches (each rests at least as long as it took).
    public var prunePause: Duration = .milliseconds(10)
    /// How often the history's weekly partitions are created ahead and emptied weeks dropped (the
    /// first time at start; ``HistoryPartitioner``). Runs whether or not pruning is on.
    public var historyPartitionInterval: Duration = .seconds(600)
    /// How many weeks after this one get their history partitions ahead of time.
    public var historyWeeksAhead: Int = 4

    public init(conninfo: String) {
        self.conninfo = conninfo
    }
}

/// The orchestrator: the chores that no worker's report triggers.
///
/// Step outcomes are applied by the workers' own `report_steps` calls, in the same
/// transaction as the result (children enqueued, tasks settled): one commit and one hop fewer per
/// step than routing every outcome through an orchestrator. What remains is time-driven, and done
/// here: starting scheduled tasks, enqueuing retries whose backoff ended, recovering steps whose
/// worker stopped heartbeating, sweeping for stalled tasks, pruning dead workers from the
/// registry, and deleting finished tasks whose retention ran out (``TaskPruner``, on a connection
/// of its own). Every chore picks its rows with
/// SKIP LOCKED, so any number of orchestrators run at once with no leader.
///
/// It wakes on NOTIFY `orcastra_orchestrator` (sent when a retry is scheduled or a sub-workflow's
/// child task finishes), at the next due time it knows of, and at least every poll interval. A
/// NOTIFY or a due time runs a round of every chore; a poll asks the database only when the next
/// chore falls due (`orcastra.next_due()`, one statement) and runs a round when that is not in the
/// future, or when a full round is a stalled-sweep interval old — so an idle orchestrator sends one
/// statement a poll, not ten (issue 12). Each chore runs in a transaction of its
/// own and locks steps before tasks, so no chore can deadlock with a worker or another
/// orchestrator. A graceful shutdown (a `ServiceGroup`'s, on SIGTERM) cancels it, like
/// cancellation: a chore in flight commits or rolls back whole, in its own transaction.
public actor Orchestrator: Service {
    public static let channel = ProtocolChannel.orchestrator

    public nonisolated let configuration: OrchestratorConfiguration
    private let logger: Logger
    private var connection: PostgresConnection?
    private let wake: WakeSignal
    private let wakeups: AsyncStream<Void>
    private var dueTimer: Task<Void, Never>?
    private var lastSweep = ContinuousClock.now
    private var lastRound: ContinuousClock.Instant?
    private var lastPrune: ContinuousClock.Instant?
    private var warnedNoRegistry = false
    private var scheduleFirer = ScheduleFirer()
    private var warnedNoSchedules = false

    public init(configuration: OrchestratorConfiguration, logger: Logger = Logger(label: "orcastra.orchestrator")) {
        self.configuration = configuration
        self.logger = logger
        let (wakeups, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.wakeups = wakeups
        wake = WakeSignal(continuation)
    }

    /// Works until a graceful shutdown or until the calling task is cancelled.
    public func run() async {
        await cancelWhenGracefulShutdown { await self.work() }
    }

    private func work() async {
        logger.info("orchestrator started", metadata: ["poll_interval": "\(configuration.pollInterval)"])
        let listener = PostgresListener(conninfo: configuration.listenConninfo ?? PostgresListener.conninfo(forDatabase: configuration.conninfo),
                                        channels: [Self.channel], logger: logger)
        let wake = self.wake
        // Every listener event is work: a NOTIFY, or LISTEN (re)established (notifications sent
        // while it was down are lost, so a round catches up).
        let listening = Task { for await _ in listener { wake.work() } }
        let interval = configuration.pollInterval
        let polling = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                wake.poll()
            }
        }
        let pruning = configuration.pruneInterval.map { interval in
            let pruner = TaskPruner(conninfo: configuration.conninfo, defaults: configuration.retentionDefaults, interval: interval,
                                    batchRows: configuration.pruneBatchRows, pause: configuration.prunePause,
                                    historyWeeksAhead: configuration.historyWeeksAhead, logger: logger)
            return Task { await pruner.run() }
        }
        let partitioner = HistoryPartitioner(conninfo: configuration.conninfo, interval: configuration.historyPartitionInterval,
                                             weeksAhead: configuration.historyWeeksAhead, logger: logger)
        let partitioning = Task { await partitioner.run() }
        var backoff = (current: Duration.milliseconds(100), maximum: Duration.seconds(5))
        for await _ in wakeups {
            if Task.isCancelled { break }
            do {
                if wake.takeWork() || lastRound.map({ ContinuousClock.now - $0 >= configuration.stalledSweepInterval }) ?? true {
                    try await tick()
                } else if try await scheduleNextDue(on: try await live()) {
                    try await tick()
                }
                backoff.current = .milliseconds(100)
            } catch {
                if Task.isCancelled { break }
                if let error = error as? PostgresError, error.meansSchemaNotMigrated {
                    logger.error("orchestrator round failed: the database lacks Orcastra's schema, or has an older one than this orchestrator: run `orcastra migrate`. Retrying",
                                 metadata: ["error": "\(error)", "retry_in": "\(backoff.current)"])
                } else {
                    logger.warning("orchestrator round failed; retrying", metadata: ["error": "\(error)", "retry_in": "\(backoff.current)"])
                }
                if let connection, connection.isBroken { await connection.close(); self.connection = nil }
                try? await Task.sleep(for: backoff.current)
                backoff.current = min(backoff.current * 2, backoff.maximum)
                wake.work()
            }
        }
        listener.stop()
        listening.cancel()
        polling.cancel()
        pruning?.cancel()
        await pruning?.value
        partitioning.cancel()
        await partitioning.value
        dueTimer?.cancel()
        await connection?.close()
        logger.info("orchestrator stopped")
    }

    private func live() async throws -> PostgresConnection {
        if let connection, !connection.isBroken { return connection }
        let fresh = try await PostgresConnection.connect(configuration.conninfo, logger: logger)
        connection = fresh
        return fresh
    }

    /// One round: each chore in its own statement and transaction (one chore's locks are never
    /// held while another chore waits), repeated while any chore was full.
    func tick() async throws {
        let connection = try await live()
        lastRound = .now
        // Schedules first: their occurrences are the chore whose lateness users see.
        try await fireSchedules(on: connection)
        let limit = configuration.batchLimit
        while !Task.isCancelled {
            let started = try await chore("start_due_tasks", on: connection, "SELECT orcastra.start_due_tasks(\(limit)::int) AS n")
            let retried = try await chore("enqueue_due_retries", on: connection, "SELECT orcastra.enqueue_due_retries(\(limit)::int) AS n")
            let recovered = try await chore("recover_expired_leases", on: connection, "SELECT orcastra.recover_expired_leases(\(limit)::int) AS n")
            let timedOut = try await chore("fail_overdue_tasks", on: connection, "SELECT orcastra.fail_overdue_tasks(\(limit)::int) AS n")
            // Sub-workflows: workflow steps follow their finished child tasks, then children nobody
            // waits for any more (a parent that timed out) are cancelled (functions/subworkflows.sql).
            let followed = try await chore("advance_subworkflows", on: connection, "SELECT orcastra.advance_subworkflows(\(limit)::int) AS n")
            let orphaned = try await chore("cancel_orphaned_subworkflows", on: connection, "SELECT orcastra.cancel_orphaned_subworkflows(\(limit)::int) AS n")
            if timedOut > 0 { logger.warning("failed tasks past their timeout", metadata: ["count": "\(timedOut)"]) }
            if followed > 0 { logger.debug("moved workflow steps after their sub-workflows", metadata: ["count": "\(followed)"]) }
            if orphaned > 0 { logger.info("cancelled sub-workflows whose step no longer waits", metadata: ["count": "\(orphaned)"]) }
            if started > 0 { logger.info("started scheduled tasks", metadata: ["count": "\(started)"]) }
            if retried > 0 { logger.debug("enqueued retries", metadata: ["count": "\(retried)"]) }
            if recovered > 0 { logger.warning("recovered steps whose worker stopped heartbeating", metadata: ["count": "\(recovered)"]) }
            if max(started, retried, recovered, timedOut, followed, orphaned) < limit { break }
        }
        if ContinuousClock.now - lastSweep >= configuration.stalledSweepInterval {
            lastSweep = .now
            let settled = try await chore("settle_stalled_tasks", on: connection, "SELECT orcastra.settle_stalled_tasks(\(limit)::int) AS n")
            if settled > 0 { logger.warning("settled stalled tasks", metadata: ["count": "\(settled)"]) }
        }
        if lastPrune.map({ ContinuousClock.now - $0 >= configuration.workerPruneInterval }) ?? true {
            lastPrune = .now
            try await pruneWorkers(on: connection)
        }
        _ = try await scheduleNextDue(on: connection)
    }

    /// Runs one chore's statement (its own transaction), which answers how many rows it touched
    /// in `n`; records its duration and rows (docs/metrics.md).
    private func chore(_ name: String, on connection: PostgresConnection, _ statement: SQL) async throws -> Int {
        let started = ContinuousClock.now
        let rows = try await connection.queryRow(statement).decode("n", as: Int.self)
        OrcastraMetric.choreDuration.observe(ContinuousClock.now - started, name)
        OrcastraMetric.choreRows.increment(by: rows, name)
        return rows
    }

    /// Fires due schedules, a batch per transaction, until none is left.
    private func fireSchedules(on connection: PostgresConnection) async throws {
        let limit = configuration.scheduleBatchLimit
        while !Task.isCancelled {
            var firer = scheduleFirer
            let round: ScheduleFirer.Round
            let began = ContinuousClock.now
            do {
                round = try await firer.fireDue(on: connection, limit: limit, logger: logger)
                OrcastraMetric.choreDuration.observe(ContinuousClock.now - began, "fire_schedules")
                OrcastraMetric.choreRows.increment(by: round.created, "fire_schedules")
            } catch let error as PostgresError where error.meansSchemaNotMigrated {
                // A database migrated by an older Orcastra has no schedules: the other chores go on.
                if !warnedNoSchedules {
                    warnedNoSchedules = true
                    logger.warning("the database has no schedules table (its schema is older than this orchestrator): run `orcastra migrate`",
                                   metadata: ["error": "\(error)"])
                }
                return
            }
            scheduleFirer = firer
            if round.created + round.skipped + round.failed > 0 {
                logger.debug("fired schedules", metadata: ["schedules": "\(round.schedules)", "created": "\(round.created)",
                                                          "skipped": "\(round.skipped)", "failed": "\(round.failed)"])
            }
            if round.schedules < limit { break }
        }
    }

    /// Deletes the registry rows of workers dead for a day (`orcastra worker list --all` shows
    /// them until then). A database without the registry (migrated by an older Orcastra) is said
    /// once and does not fail the round: the chores that move steps matter more.
    private func pruneWorkers(on connection: PostgresConnection) async throws {
        do {
            let pruned = try await chore("prune_workers", on: connection, """
                SELECT orcastra.prune_workers(\(configuration.workerRetention.seconds) * interval '1 second') AS n
                """)
            if pruned > 0 { logger.info("removed workers not heard from for a day from the registry", metadata: ["count": "\(pruned)"]) }
        } catch let error as PostgresError where error.meansSchemaNotMigrated {
            if !warnedNoRegistry {
                warnedNoRegistry = true
                logger.warning("the database has no worker registry (its schema is older than this orchestrator): run `orcastra migrate`",
                               metadata: ["error": "\(error)"])
            }
        }
    }

    /// Sleeps until the earliest retry, lease expiry, scheduled start, task deadline or schedule
    /// occurrence (`orcastra.next_due()`), if that comes before the next poll; answers whether
    /// something is due already. The delay is the database's (its clock decides what is due), so a
    /// machine whose clock is off does not wake too early and spin, or too late.
    private func scheduleNextDue(on connection: PostgresConnection) async throws -> Bool {
        let delay = try await connection.queryRow(
            "SELECT extract(epoch FROM orcastra.next_due() - clock_timestamp())::float8 AS delay"
        ).decode("delay", as: Double?.self)
        dueTimer?.cancel()
        dueTimer = nil
        guard let delay else { return false }
        if delay <= 0 { return true }
        guard delay < configuration.pollInterval.seconds else { return false }
        let wake = self.wake
        dueTimer = Task {
            try? await Task.sleep(for: .milliseconds(Int(delay * 1000) + 1))
            if !Task.isCancelled { wake.work() }
        }
        return false
    }
}

/// What woke the orchestrator: ``work()`` (a NOTIFY, the due timer, a retry after a failed round)
/// asks for a round of every chore; ``poll()`` only for a look at when the next one falls due. One
/// wake-up is buffered; whether work was asked for since the last look is kept apart from it, so a
/// poll never hides a NOTIFY that came before it.
final class WakeSignal: Sendable {
    private let continuation: AsyncStream<Void>.Continuation
    private let workAsked = Mutex(false)

    init(_ continuation: AsyncStream<Void>.Continuation) {
        self.continuation = continuation
    }

    func work() {
        workAsked.withLock { $0 = true }
        continuation.yield()
    }

    func poll() {
        continuation.yield()
    }

    /// Whether work was asked for since the last call.
    func takeWork() -> Bool {
        workAsked.withLock { asked in
            defer { asked = false }
            return asked
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
