import Foundation
import Logging
import OrcastraPostgres
import OrcastraTemplates

/// The retention chore: deletes finished tasks whose retention ran out, with everything they own,
/// one bounded batch per transaction (`orcastra.prune_expired_tasks`, Migrations/functions/retention.sql),
/// then drops the history partitions of weeks no task is left in (``HistoryPartitioner``).
///
/// It runs beside the orchestrator's other chores on a connection of its own, so a long prune never
/// delays a retry, a lease recovery or a schedule. Throttled: after each batch it rests as long as
/// the batch took (at least ``OrchestratorConfiguration/prunePause``), so it keeps at most half of
/// one database backend busy and live work keeps its latency. Every orchestrator runs it: batches
/// are locked SKIP LOCKED, so several share a backlog instead of repeating each other's work.
struct TaskPruner: Sendable {
    let conninfo: String
    let defaults: RetentionPolicy
    let interval: Duration
    let batchRows: Int
    let pause: Duration
    /// Weekly history partitions kept made ahead (``OrchestratorConfiguration/historyWeeksAhead``),
    /// for the maintenance run after a round that deleted something.
    var historyWeeksAhead = 4
    let logger: Logger

    /// What one round deleted.
    struct Round: Sendable, Equatable {
        var tasks = 0
        var rows = 0
        var batches = 0
    }

    /// Prunes now and then every interval, until cancelled.
    func run() async {
        let chore = PeriodicChore(
            conninfo: conninfo, interval: interval, logger: logger,
            notMigrated: "the database has no retention functions (its schema is older than this orchestrator): run `orcastra migrate`",
            failed: "pruning expired tasks failed; trying again at the next interval")
        await chore.run { connection in
            let round = try await pruneExpired(on: connection)
            guard round.tasks > 0 else { return }
            logger.info("deleted finished tasks whose retention ran out", metadata: [
                "tasks": "\(round.tasks)", "rows": "\(round.rows)", "batches": "\(round.batches)"])
            // Their history goes with its week once no task of the week is left.
            let history = try await HistoryPartitioner.maintain(on: connection, weeksAhead: historyWeeksAhead)
            if history.dropped > 0 {
                logger.info("dropped history partitions no task is left in", metadata: [
                    "partitions": "\(history.dropped)", "bytes": "\(history.droppedBytes)"])
            }
        }
    }

    /// Deletes batches until none is left (or none could be locked), resting between them.
    func pruneExpired(on connection: PostgresConnection) async throws -> Round {
        let defaultsJSON = try Self.json(defaults)
        var round = Round()
        while !Task.isCancelled {
            let started = ContinuousClock.now
            let row = try await connection.queryRow("""
                SELECT tasks, deleted_rows, candidates FROM orcastra.prune_expired_tasks(\(defaultsJSON)::jsonb, \(batchRows)::int)
                """)
            let tasks = try row.decode("tasks", as: Int.self)
            round.tasks += tasks
            round.rows += try row.decode("deleted_rows", as: Int.self)
            round.batches += 1
            // None deleted: nothing is due, or what is due is held by others (taken next time).
            if tasks == 0 { break }
            let rest = max(ContinuousClock.now - started, pause)
            try? await Task.sleep(for: rest)
        }
        return round
    }

    /// The defaults as `prune_expired_tasks` takes them: `{"complete_ms": n | null, …}`, every state present.
    static func json(_ defaults: RetentionPolicy) throws -> String {
        var complete = defaults
        for state in RetentionPolicy.states where complete[state] == nil { complete[state] = .forever }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(complete), as: UTF8.self)
    }
}

extension RetentionPolicy {
    /// The orchestrators' defaults when nothing is configured: the figures, a week for
    /// tasks that need no attention and a month for those someone may want to look into.
    public static let orchestratorDefaults = RetentionPolicy(
        complete: .after(.hours(7 * 24)), error: .after(.hours(30 * 24)),
        cancelled: .after(.hours(7 * 24)), resolvedManually: .after(.hours(30 * 24)))
}
