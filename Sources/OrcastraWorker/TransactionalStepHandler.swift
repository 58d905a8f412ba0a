import Foundation
import OrcastraPostgres
import OrcastraTemplates

/// A step handler whose database writes commit together with the step's completion.
///
/// The worker opens a transaction on a connection of its own to the step's database (one per
/// running transactional step, from a pool; never the connection it claims or reports on) and
/// passes it to `run`. When `run` returns, the worker records the step's completion — the result
/// stored, ready children enqueued, the task settled — with `orcastra.complete_step_in_transaction`
/// in that same transaction (it reports the step and checks its lease token, and raises OR005
/// unless the step was completed, so the COMMIT sent with it cannot commit the writes). So the handler's writes and the completion commit together or not at all:
///
/// - the lease was lost (the step was recovered and may run elsewhere) or the task was cancelled:
///   the transaction rolls back, and the writes never happen;
/// - the handler throws (retryable or permanent), times out, or the worker stops: the transaction
///   rolls back; a failure is then recorded in a transaction of its own, as for any handler;
/// - the worker process dies: PostgreSQL rolls back the open transaction.
///
/// Only writes made through `transaction` are covered. Effects outside this database (an HTTP
/// call, a mail, another database) are not; use `StepContext.idempotencyKey` for those
/// (docs/transactions.md).
///
/// ```swift
/// struct Post: TransactionalStepHandler {
///     static let name = "ledger.post"
///     struct Input: Decodable, Sendable { var account: String; var cents: Int64 }
///     func run(_ input: Input, context: StepContext, transaction: StepTransaction) async throws -> [String: Int64] {
///         try await transaction.execute("""
///             INSERT INTO ledger.entries (step_id, account, cents) VALUES (\(context.stepID), \(input.account), \(input.cents))
///             """)
///         return ["posted": input.cents]
///     }
/// }
/// ```
public protocol TransactionalStepHandler: Sendable {
    associatedtype Input: Decodable & Sendable
    associatedtype Output: Encodable & Sendable
    static var name: String { get }
    func run(_ input: Input, context: StepContext, transaction: StepTransaction) async throws -> Output
}

/// The open transaction a `TransactionalStepHandler` writes in. The worker began it and ends it:
/// do not send `COMMIT`, `ROLLBACK` or `BEGIN` (a step whose transaction the handler ended is
/// failed, not completed). `SAVEPOINT`s are fine.
///
/// Cancelling the handler's task (timeout, lost lease, shutdown) cancels the statement in flight
/// on the server.
public struct StepTransaction: Sendable {
    /// The worker's connection for this step, inside the step's transaction. Pass it to APIs that
    /// take a connection in a transaction, such as `OrcastraClient.submit(_:in:)` (a task submitted
    /// here exists only if the step completes).
    public let connection: PostgresConnection

    init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// Runs one statement in the step's transaction and returns its rows.
    @discardableResult
    public func query(_ sql: SQL) async throws -> QueryResult {
        try await connection.query(sql)
    }

    /// Runs one statement in the step's transaction and returns its number of affected rows.
    @discardableResult
    public func execute(_ sql: SQL) async throws -> Int {
        try await connection.execute(sql)
    }

    /// Runs a query that must return at least one row, and returns the first.
    public func queryRow(_ sql: SQL) async throws -> PostgresRow {
        try await connection.queryRow(sql)
    }
}
