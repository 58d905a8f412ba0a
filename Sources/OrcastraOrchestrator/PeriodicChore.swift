import Logging
import OrcastraPostgres

/// The loop the maintenance chores share (``TaskPruner``, ``HistoryPartitioner``): a round now and
/// then every `interval`, on a connection of its own that is opened again once it broke, so a long
/// round never delays the orchestrator's other chores. A database whose schema lacks the chore's
/// functions is said once (`orcastra migrate` adds them); any other failure at each round, which
/// the next round tries again. Ends when its task is cancelled.
struct PeriodicChore: Sendable {
    let conninfo: String
    let interval: Duration
    let logger: Logger
    /// Said once when the chore's functions are missing.
    let notMigrated: Logger.Message
    /// Said when a round fails.
    let failed: Logger.Message

    func run(round: (PostgresConnection) async throws -> Void) async {
        var connection: PostgresConnection?
        var warnedNotMigrated = false
        while !Task.isCancelled {
            do {
                let live: PostgresConnection
                if let connection, !connection.isBroken { live = connection } else {
                    live = try await PostgresConnection.connect(conninfo, logger: logger)
                    connection = live
                }
                try await round(live)
            } catch let error as PostgresError where error.meansSchemaNotMigrated {
                if !warnedNotMigrated {
                    warnedNotMigrated = true
                    logger.warning(notMigrated, metadata: ["error": "\(error)"])
                }
            } catch {
                if Task.isCancelled { break }
                logger.warning(failed, metadata: ["error": "\(error)"])
                if let broken = connection, broken.isBroken { await broken.close(); connection = nil }
            }
            try? await Task.sleep(for: interval)
        }
        await connection?.close()
    }
}
