// A worker whose handler writes to the same database, exactly once per step: the example to copy
// for a TransactionalStepHandler (docs/transactions.md).
//
//   swift run ledger-worker              (uses ORCASTRA_DATABASE_URL / DATABASE_URL / PG*)
//
// It creates its own tables from Examples/LedgerWorker/ledger.sql at start. Then:
//   orcastra template register Examples/LedgerWorker/ledger.yaml
//   orcastra submit ledger/post --context '{"from": "alice", "to": "bob", "cents": 1250}' --wait
//   psql -c 'SELECT * FROM ledger.entries'
//
// `--plain` runs the same insert without the step's transaction (committed on its own, then the
// step is reported), into ledger.plain_entries: a crash between the two runs the step again and
// writes a second row. Tests/OrcastraReliabilityTests/ExactlyOnceTests kills both kinds of worker
// over and over and counts the rows.
import ArgumentParser
import Foundation
import Logging
import OrcastraCommandLine
import OrcastraPostgres
import OrcastraWorker

struct Transfer: Decodable, Sendable {
    var from: String
    var to: String
    var cents: Int64
}

struct Posted: Encodable, Sendable {
    var account: String
    var cents: Int64
}

/// The entry a step posts: the debit takes from `from`, the credit gives to `to`, and the closing
/// step (any other name) records the transfer as settled.
func entry(for transfer: Transfer, step: String) -> Posted {
    switch step {
    case "debit": Posted(account: transfer.from, cents: -transfer.cents)
    case "credit": Posted(account: transfer.to, cents: transfer.cents)
    default: Posted(account: "\(transfer.from)->\(transfer.to)", cents: 0)
    }
}

/// Writes the step's ledger row in the step's own transaction: the row commits if and only if the
/// step completes.
struct Post: TransactionalStepHandler {
    static let name = "ledger.post"
    /// Time spent after the insert, before returning (to widen the window a crash can hit).
    var delay: Duration

    func run(_ input: Transfer, context: StepContext, transaction: StepTransaction) async throws -> Posted {
        let posted = entry(for: input, step: context.stepName)
        try await transaction.execute("""
            INSERT INTO ledger.entries (step_id, task_id, step_name, account, cents, attempt)
            VALUES (\(context.stepID), \(context.taskID), \(context.stepName), \(posted.account), \(posted.cents), \(context.attempt))
            """)
        if delay > .zero { try await Task.sleep(for: delay) }
        return posted
    }
}

/// The same insert the way a handler without a transaction does it: committed at once, the step
/// reported afterwards by the worker. For comparison only (`--plain`).
struct PlainPost: StepHandler {
    static let name = "ledger.post"
    var pool: PostgresPool
    var delay: Duration

    func run(_ input: Transfer, context: StepContext) async throws -> Posted {
        let posted = entry(for: input, step: context.stepName)
        try await pool.query("""
            INSERT INTO ledger.plain_entries (step_id, task_id, step_name, account, cents, attempt)
            VALUES (\(context.stepID), \(context.taskID), \(context.stepName), \(posted.account), \(posted.cents), \(context.attempt))
            """)
        if delay > .zero { try await Task.sleep(for: delay) }
        return posted
    }
}

@main
struct LedgerWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger-worker", abstract: "Run the ledger example's steps (namespace ledger, handler ledger.post).")

    @Flag(help: "Write without the step's transaction, into ledger.plain_entries (a crash can then write a step's row twice).")
    var plain = false

    @Option(help: "How long the handler waits after its insert, before returning (default: not at all).", transform: DurationArgument.parse)
    var postDelay: DurationArgument?

    @Option(help: "How many steps run at once.")
    var concurrency = 10

    @Option(help: "How long a claimed step is held without a heartbeat. (default: 30s)", transform: DurationArgument.parse)
    var lease = DurationArgument("30s")

    @Option(help: "How often to look for work when no notification arrives. (default: 1s)", transform: DurationArgument.parse)
    var pollInterval = DurationArgument("1s")

    @Option(help: "trace, debug, info, notice, warning, error or critical (default: info, or ORCASTRA_LOG_LEVEL).")
    var logLevel: Logger.Level?

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        Lifecycle.bootstrapLogging(level: logLevel)
        let logger = Logger(label: "ledger-worker")
        let conninfo = try await database.conninfo()
        try await Self.createTables(conninfo)

        var configuration = WorkerConfiguration(conninfo: conninfo, namespace: "ledger")
        configuration.concurrency = concurrency
        configuration.claimBatch = concurrency
        configuration.lease = lease.duration
        configuration.pollInterval = pollInterval.duration
        var handlers = HandlerRegistry.builtIn
        let pool = PostgresPool(conninfo: conninfo, maximumConnections: concurrency)
        if plain {
            handlers.register(PlainPost(pool: pool, delay: postDelay?.duration ?? .zero))
        } else {
            handlers.register(Post(delay: postDelay?.duration ?? .zero))
        }
        let worker = Worker(configuration: configuration, handlers: handlers, logger: Logger(label: "ledger-worker"))
        logger.info("ledger worker starting", metadata: ["mode": "\(plain ? "plain" : "transactional")"])
        try await Lifecycle.runUntilSignalled([worker], logger: logger)
        await pool.shutdown()
    }

    /// Applies ledger.sql (shipped with the executable), one worker at a time.
    static func createTables(_ conninfo: String) async throws {
        guard let url = Bundle.module.url(forResource: "ledger", withExtension: "sql") else {
            throw ValidationError("ledger.sql is missing from the ledger-worker's resources")
        }
        let sql = try String(contentsOf: url, encoding: .utf8)
        let connection = try await PostgresConnection.connect(conninfo)
        do {
            try await connection.executeSimple("BEGIN; SELECT pg_advisory_xact_lock(hashtext('orcastra-example-ledger.sql'));\n\(sql)\nCOMMIT;")
            await connection.close()
        } catch {
            await connection.close()
            throw error
        }
    }
}
