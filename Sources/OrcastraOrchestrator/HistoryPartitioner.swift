import Foundation
import Logging
import OrcastraPostgres

/// The history-partition chore: keeps the task and step transitions' weekly partitions created
/// ahead and drops the weeks no task is left of (`orcastra.maintain_history_partitions`,
/// Migrations/functions/history_partitions.sql; docs/retention.md, "Partitioned history").
///
/// It runs at start and then every ``interval`` on a connection of its own, whether or not
/// pruning is on: a week without a partition still works (its rows wait in the default
/// partition) but is moved row by row once its partition is made. Every orchestrator runs it; the
/// function's advisory lock lets one do the work while the others return at once.
struct HistoryPartitioner: Sendable {
    let conninfo: String
    let interval: Duration
    let weeksAhead: Int
    let logger: Logger

    /// What one run did.
    struct Outcome: Sendable, Equatable {
        var created = 0
        var movedRows = 0
        var dropped = 0
        var droppedBytes = 0
        var skipped = false
    }

    /// Maintains now and then every interval, until cancelled.
    func run() async {
        let chore = PeriodicChore(
            conninfo: conninfo, interval: interval, logger: logger,
            notMigrated: "the database has no history partitions (its schema is older than this orchestrator): run `orcastra migrate`",
            failed: "maintaining history partitions failed; trying again at the next interval")
        await chore.run { connection in
            let outcome = try await Self.maintain(on: connection, weeksAhead: weeksAhead)
            if outcome.created > 0 || outcome.dropped > 0 {
                logger.info("history partitions maintained", metadata: [
                    "created": "\(outcome.created)", "moved_rows": "\(outcome.movedRows)",
                    "dropped": "\(outcome.dropped)", "dropped_bytes": "\(outcome.droppedBytes)"])
            }
        }
    }

    /// One run of `orcastra.maintain_history_partitions` (also what `orcastra prune` calls).
    static func maintain(on connection: PostgresConnection, weeksAhead: Int = 4) async throws -> Outcome {
        let row = try await connection.queryRow("""
            SELECT created, moved_rows, dropped, dropped_bytes, skipped
            FROM orcastra.maintain_history_partitions(\(weeksAhead)::int)
            """)
        return Outcome(created: try row.decode("created", as: Int.self), movedRows: try row.decode("moved_rows", as: Int.self),
                       dropped: try row.decode("dropped", as: Int.self), droppedBytes: try row.decode("dropped_bytes", as: Int.self),
                       skipped: try row.decode("skipped", as: Bool.self))
    }
}
