import CLibPQ
import Foundation
import Logging
import OrcastraMetrics
import Synchronization

/// One libpq connection, isolated to an actor that runs on its own thread.
///
/// Every blocking libpq call happens on that thread (see `ThreadExecutor`), never on Swift's shared
/// cooperative pool. Callers simply `await` its methods.
public actor PostgresConnection {
    private let executor: ThreadExecutor
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    private var handle: OpaquePointer?
    private let canceller = QueryCanceller()
    /// The server address with any password removed, for error messages and logs.
    public nonisolated let address: String
    /// Set once libpq reports the connection bad; a pool replaces such connections. Readable
    /// without hopping onto the connection's thread (callers check it before every use).
    public nonisolated var isBroken: Bool { broken.load(ordering: .acquiring) }
    private let broken = Atomic<Bool>(false)
    /// Whether no transaction block was open when the last statement ended: a pool reads it when
    /// the connection comes back, without a hop onto the connection's thread. Every libpq call that
    /// can open or end a transaction is in this file and records it when it ends.
    public nonisolated var wasIdleAfterLastStatement: Bool { idleAfterLast.load(ordering: .acquiring) }
    private let idleAfterLast = Atomic<Bool>(false)
    private let logger: Logger
    /// Statement text → the name it is prepared under on this connection. Hot statements (claim,
    /// complete) are then parsed and planned once per connection instead of on every call.
    /// Only statements whose PREPARE the server confirmed are recorded.
    private var prepared: [String: String] = [:]
    private static let maximumPrepared = 256
    /// Names are never reused, so a name the server may still hold cannot collide with a new one.
    private var preparedCounter = 0
    /// The cache was dropped inside a transaction block, where DEALLOCATE cannot run; the server's
    /// statements are deallocated before the next statement outside one.
    private var deallocatePending = false
    /// Whether statements are prepared under names (parsed and planned once per connection). Off
    /// behind a pooler in transaction mode that does not track named statements (PgBouncer before
    /// 1.21, or with `max_prepared_statements = 0`): every statement is then sent unnamed, parsed
    /// and bound in the same round trip, which any pooler passes through.
    public nonisolated let usesPreparedStatements: Bool

    private init(address: String, logger: Logger, preparedStatements: Bool) {
        executor = ThreadExecutor(name: "orcastra-pg")
        self.address = address
        self.logger = logger
        usesPreparedStatements = preparedStatements
    }

    /// Whether connections prepare named statements unless told otherwise: yes, except when the
    /// environment says `ORCASTRA_PREPARED_STATEMENTS=off` (or `false`, `0`, `no`) — the switch for
    /// every process that goes through PgBouncer in transaction mode (docs/failover.md).
    public static var preparedStatementsByDefault: Bool {
        guard let value = ProcessInfo.processInfo.environment["ORCASTRA_PREPARED_STATEMENTS"]?.lowercased() else { return true }
        return !["off", "false", "0", "no"].contains(value.trimmingCharacters(in: .whitespaces))
    }

    /// Connects with anything libpq accepts: a `postgresql://` URL, `key=value` pairs, or "" to use
    /// only the `PG*` environment variables.
    /// `preparedStatements: false` sends every statement unnamed (see `usesPreparedStatements`).
    public static func connect(
        _ conninfo: String,
        logger: Logger = Logger(label: "orcastra.postgres"),
        preparedStatements: Bool = preparedStatementsByDefault
    ) async throws -> PostgresConnection {
        let connection = PostgresConnection(address: ConnectionAddress.describe(conninfo), logger: logger, preparedStatements: preparedStatements)
        do {
            try await connection.open(conninfo)
        } catch {
            await connection.close()
            throw error
        }
        return connection
    }

    private func open(_ conninfo: String) throws {
        guard let connection = PQconnectdb(conninfo) else {
            throw PostgresError.connectionFailed(address: address, message: "libpq could not allocate a connection")
        }
        handle = connection
        guard PQstatus(connection) == CONNECTION_OK else {
            OrcastraMetric.databaseErrors.increment("08")  // connection exception
            throw PostgresError.connectionFailed(address: address, message: Self.lastError(connection))
        }
        // Server notices (e.g. "relation already exists, skipping") are not errors: keep them out of stderr.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        canceller.set(PQgetCancel(connection))
        try executeSimple("SET DateStyle = 'ISO'; SET TimeZone = 'UTC'; SET extra_float_digits = 3")
    }

    private func recordTransactionStatus() {
        idleAfterLast.store(handle.map { PQtransactionStatus($0) == PQTRANS_IDLE } ?? false, ordering: .releasing)
    }

    /// Closes the connection and ends its thread. Safe to call twice.
    public func close() {
        idleAfterLast.store(false, ordering: .releasing)
        canceller.set(nil)
        if let handle {
            PQfinish(handle)
            self.handle = nil
        }
        broken.store(true, ordering: .releasing)
        executor.shutdown()
    }

    isolated deinit {
        canceller.set(nil)
        if let handle { PQfinish(handle) }
        executor.shutdown()
    }

    /// The name of the thread this connection's work runs on (`orcastra-pg`), for tests that prove
    /// libpq calls stay off Swift's cooperative pool.
    public var executingThreadName: String? {
        (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The libpq socket, for callers that wait on it.
    public var socket: Int32 {
        guard let handle else { return -1 }
        return PQsocket(handle)
    }

    /// Whether the session is idle, in a transaction, or in a failed transaction.
    public var transactionStatus: TransactionStatus {
        guard let handle else { return .unknown }
        switch PQtransactionStatus(handle) {
        case PQTRANS_IDLE: return .idle
        case PQTRANS_INTRANS: return .inTransaction
        case PQTRANS_INERROR: return .failedTransaction
        case PQTRANS_ACTIVE: return .active
        default: return .unknown
        }
    }

    public enum TransactionStatus: Sendable { case idle, inTransaction, failedTransaction, active, unknown }

    // MARK: - Statements

    /// Runs one statement with its bind parameters and returns its rows.
    /// Cancelling the calling task sends a cancel request to the server.
    @discardableResult
    public func query(_ sql: SQL) async throws -> QueryResult {
        try Task.checkCancellation()
        try Self.validate(sql)
        _ = try live()
        return try await cancellable { connection in
            do {
                return try connection.runStatement(sql)
            } catch let error as PostgresError where error.isStalePreparedStatement {
                // A migration replaced what the statement depends on (0A000), or the server lost
                // our statements (26000). Outside a transaction block nothing was done: run it again.
                guard connection.forgetPrepared() else { throw error }
                return try connection.runStatement(sql)
            }
        }
    }

    private func runStatement(_ sql: SQL) throws -> QueryResult {
        let connection = try live()
        deallocateIfPending(connection)
        let name = try preparedName(for: sql, on: connection)
        let result = Self.withParameters(sql.bindings) { count, types, values in
            if let name {
                return PQexecPrepared(connection, name, count, values, nil, nil, 0)
            }
            return PQexecParams(connection, sql.text, count, types, values, nil, nil, 0)
        }
        return try consume(result, statement: sql.text)
    }

    /// Runs `body` (blocking libpq calls, on this connection's thread) so that cancelling the
    /// calling task cancels this statement and no other: the cancel request names the statement's
    /// generation and is sent from a thread of its own, never from Swift's cooperative pool.
    /// `body` takes the connection `isolated`, so the compiler proves it runs on the connection's
    /// thread (a closure that did not capture `self` would otherwise run on the shared pool).
    private func cancellable<Value: Sendable>(_ body: (isolated PostgresConnection) throws -> Value) async throws -> Value {
        let ticket = CancelTicket()
        let canceller = self.canceller
        return try await withTaskCancellationHandler {
            let generation = canceller.begin()
            defer { canceller.end(generation) }
            guard ticket.start(generation) else { throw CancellationError() }
            defer { recordTransactionStatus() }
            return try body(self)
        } onCancel: {
            ticket.requestCancel(canceller)
        }
    }

    /// Drops the prepared-statement cache after a stale-plan error. Returns whether the failed
    /// statement may simply run again: only when no transaction block is open (an implicit
    /// transaction, even a failed pipeline's, has already been rolled back).
    private func forgetPrepared() -> Bool {
        prepared.removeAll()
        deallocatePending = true
        guard let handle else { return false }
        deallocateIfPending(handle)
        return PQtransactionStatus(handle) == PQTRANS_IDLE
    }

    private func deallocateIfPending(_ connection: OpaquePointer) {
        guard deallocatePending, PQtransactionStatus(connection) == PQTRANS_IDLE else { return }
        if let result = PQexec(connection, "DEALLOCATE ALL") { PQclear(result) }
        // Anything prepared since the cache was dropped went too.
        prepared.removeAll()
        deallocatePending = false
    }

    /// Runs a statement and returns its number of affected rows.
    @discardableResult
    public func execute(_ sql: SQL) async throws -> Int {
        try await query(sql).affectedRows
    }

    /// Runs a query that must return at least one row, and returns the first.
    public func queryRow(_ sql: SQL) async throws -> PostgresRow {
        guard let row = try await query(sql).first else { throw PostgresError.noRows(statement: sql.text) }
        return row
    }

    /// Runs text that may hold several statements (a migration file), without parameters.
    /// Uses the simple query protocol, so it is for trusted text only.
    public func executeSimple(_ text: String) throws {
        let connection = try live()
        defer { recordTransactionStatus() }
        var failure: (any Error)?
        guard PQsendQuery(connection, text) == 1 else {
            throw connectionError(statement: text)
        }
        while let result = PQgetResult(connection) {
            do { _ = try consume(result, statement: text) } catch { failure = failure ?? error }
        }
        if let failure { throw failure }
    }

    /// Sends every statement at once in libpq's pipeline mode and reads all results: one round trip
    /// for the whole batch. The statements run in one implicit transaction (unless they hold their
    /// own BEGIN/COMMIT): if one fails, the batch is rolled back and the first error is thrown.
    /// Statements not yet prepared on this connection are prepared inside the same pipeline.
    public func pipeline(_ statements: [SQL]) async throws -> [QueryResult] {
        guard !statements.isEmpty else { return [] }
        try Task.checkCancellation()
        for sql in statements { try Self.validate(sql) }
        _ = try live()
        return try await cancellable { connection in
            switch try connection.runPipeline(statements) {
            case .success(let results):
                return results
            case .failure(let error, let mayRunAgain):
                // Stale plans: the batch was rolled back as a whole, so it can run once more.
                guard mayRunAgain, connection.forgetPrepared() else { throw error }
                switch try connection.runPipeline(statements) {
                case .success(let results): return results
                case .failure(let error, _): throw error
                }
            }
        }
    }

    private enum PipelineOutcome {
        case success([QueryResult])
        case failure(any Error, mayRunAgain: Bool)
    }

    /// One attempt at a pipeline. Whatever happens, the connection leaves pipeline mode with every
    /// result read, or is marked broken.
    private func runPipeline(_ statements: [SQL]) throws -> PipelineOutcome {
        let connection = try live()
        deallocateIfPending(connection)
        guard PQenterPipelineMode(connection) == 1 else { throw connectionError(statement: "pipeline") }

        enum Expected { case preparation(text: String, name: String), statement(SQL) }
        var expected: [Expected] = []
        // Prepared inside this pipeline; recorded in `prepared` only once the server confirms.
        var unconfirmed: [String: String] = [:]
        do {
            for sql in statements {
                var name = prepared[sql.text] ?? unconfirmed[sql.text]
                if name == nil, usesPreparedStatements, prepared.count + unconfirmed.count < Self.maximumPrepared {
                    preparedCounter += 1
                    let fresh = "orcastra_\(preparedCounter)"
                    let types = sql.bindings.map { Oid($0.type.rawValue) }
                    guard PQsendPrepare(connection, fresh, sql.text, Int32(types.count), types) == 1 else {
                        throw connectionError(statement: sql.text)
                    }
                    unconfirmed[sql.text] = fresh
                    expected.append(.preparation(text: sql.text, name: fresh))
                    name = fresh
                }
                let sent = Self.withParameters(sql.bindings) { count, types, values in
                    if let name { return PQsendQueryPrepared(connection, name, count, values, nil, nil, 0) }
                    return PQsendQueryParams(connection, sql.text, count, types, values, nil, nil, 0)
                }
                guard sent == 1 else { throw connectionError(statement: sql.text) }
                expected.append(.statement(sql))
            }
            guard PQpipelineSync(connection) == 1 else { throw connectionError(statement: "pipeline sync") }
        } catch {
            // libpq cannot take back what is queued, and syncing would run (and commit) part of
            // the batch: the connection's state is unknown, so it is retired.
            broken.store(true, ordering: .releasing)
            throw error
        }

        var results: [QueryResult] = []
        var failure: (any Error)?
        for item in expected {
            switch item {
            case .preparation(let text, let name):
                var confirmed = false
                while let result = PQgetResult(connection) {
                    let status = PQresultStatus(result)
                    confirmed = confirmed || status == PGRES_COMMAND_OK
                    if status == PGRES_FATAL_ERROR, failure == nil {
                        failure = PostgresError.server(Self.serverError(result, statement: text))
                    }
                    PQclear(result)
                }
                if confirmed { prepared[text] = name }
            case .statement(let sql):
                while let result = PQgetResult(connection) {
                    if PQresultStatus(result) == PGRES_PIPELINE_ABORTED {
                        PQclear(result)
                        continue
                    }
                    do { results.append(try consume(result, statement: sql.text)) } catch { failure = failure ?? error }
                }
            }
        }
        // Read up to the sync point's own result, which closes the batch.
        var synced = false
        while !synced, PQstatus(connection) != CONNECTION_BAD, let result = PQgetResult(connection) {
            synced = PQresultStatus(result) == PGRES_PIPELINE_SYNC
            PQclear(result)
        }
        if !synced || PQexitPipelineMode(connection) != 1 {
            broken.store(true, ordering: .releasing)
            return .failure(failure ?? PostgresError.connectionLost(message: "a pipeline ended without its sync result"), mayRunAgain: false)
        }
        guard let failure else { return .success(results) }
        let stale = (failure as? PostgresError)?.isStalePreparedStatement ?? false
        let committed = results.contains { $0.commandTag == "COMMIT" }
        return .failure(failure, mayRunAgain: stale && !committed)
    }

    /// The name `sql` is prepared under on this connection, preparing it (one extra round trip,
    /// once) if it is new; nil once the cache is full.
    private func preparedName(for sql: SQL, on connection: OpaquePointer) throws -> String? {
        if let name = prepared[sql.text] { return name }
        guard usesPreparedStatements, prepared.count < Self.maximumPrepared else { return nil }
        preparedCounter += 1
        let name = "orcastra_\(preparedCounter)"
        let types = sql.bindings.map { Oid($0.type.rawValue) }
        let result = PQprepare(connection, name, sql.text, Int32(types.count), types)
        _ = try consume(result, statement: sql.text)
        prepared[sql.text] = name
        return name
    }

    /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws.
    public func withTransaction<Value: Sendable>(
        _ body: @Sendable (isolated PostgresConnection) async throws -> Value
    ) async throws -> Value {
        try await execute("BEGIN")
        do {
            let value = try await body(self)
            try await execute("COMMIT")
            return value
        } catch {
            if !isBroken { try? executeSimple("ROLLBACK") }
            throw error
        }
    }

    // MARK: - libpq plumbing

    /// Text parameters travel as C strings, so a NUL would silently cut the value short, and
    /// PostgreSQL text cannot hold NUL anyway: refuse it instead of storing something else.
    static func validate(_ sql: SQL) throws {
        if let name = sql.invalidIdentifiers.first {
            throw PostgresError.invalidIdentifier(name: name, reason: "it holds a NUL character (U+0000), which PostgreSQL names cannot hold", statement: sql.text)
        }
        if sql.bindings.count > 65_535 {
            throw PostgresError.invalidParameter(position: sql.bindings.count, reason: "a statement can have at most 65,535 parameters, this one has \(sql.bindings.count)", statement: sql.text)
        }
        for (index, binding) in sql.bindings.enumerated() {
            if let text = binding.text, text.utf8.contains(0) {
                throw PostgresError.invalidParameter(position: index + 1, reason: "text with a NUL character (U+0000), which PostgreSQL text and jsonb cannot hold", statement: sql.text)
            }
        }
    }

    private func live() throws -> OpaquePointer {
        guard let handle, !isBroken else {
            throw PostgresError.connectionLost(message: "the connection to \(address) is closed")
        }
        return handle
    }

    private func connectionError(statement: String) -> PostgresError {
        guard let handle else { return .connectionLost(message: "the connection is closed") }
        let message = Self.lastError(handle)
        OrcastraMetric.databaseErrors.increment("08")  // connection exception
        if PQstatus(handle) == CONNECTION_BAD {
            broken.store(true, ordering: .releasing)
            return .connectionLost(message: message)
        }
        return .server(ServerError(sqlState: "08000", severity: "ERROR", message: message, statement: statement))
    }

    /// Turns a libpq result into a `QueryResult` or an error, and frees it.
    private func consume(_ result: OpaquePointer?, statement: String) throws -> QueryResult {
        guard let result else { throw connectionError(statement: statement) }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_SINGLE_TUPLE, PGRES_EMPTY_QUERY:
            return Self.copy(result)
        default:
            if let handle, PQstatus(handle) == CONNECTION_BAD {
                broken.store(true, ordering: .releasing)
                OrcastraMetric.databaseErrors.increment("08")  // connection exception
                throw PostgresError.connectionLost(message: Self.lastError(handle))
            }
            // An error libpq made itself carries no SQLSTATE: the server went away ("server closed
            // the connection unexpectedly") though the status may not say so yet, as when a server
            // is killed for a failover. The session is gone or unknown: retire it, and say so as a
            // lost connection, which callers retry, not as a server's refusal, which they would not.
            if PQresultErrorField(result, Int32(Character("C").asciiValue!)) == nil {
                broken.store(true, ordering: .releasing)
                throw PostgresError.connectionLost(message: ServerError.abbreviate(String(cString: PQresultErrorMessage(result))))
            }
            let error = Self.serverError(result, statement: statement)
            if error.sqlState == Self.readOnlySQLTransaction {
                // The server will not take writes: a standby, or a primary demoted by a failover,
                // whose sessions stay open. Every later write here would fail the same way, so the
                // connection is retired; its replacement, made through a multi-host string with
                // `target_session_attrs=read-write`, reaches the new primary.
                broken.store(true, ordering: .releasing)
            }
            throw PostgresError.server(error)
        }
    }

    /// SQLSTATE 25006, read_only_sql_transaction.
    static let readOnlySQLTransaction = "25006"

    private static func copy(_ result: OpaquePointer) -> QueryResult {
        let fieldCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        var columns: [QueryResult.Column] = []
        columns.reserveCapacity(fieldCount)
        for field in 0..<fieldCount {
            columns.append(.init(name: String(cString: PQfname(result, Int32(field))),
                                 type: PostgresDataType(PQftype(result, Int32(field)))))
        }
        let layout = ColumnLayout(columns: columns)
        var rows: [PostgresRow] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(fieldCount)
            for field in 0..<fieldCount {
                if PQgetisnull(result, Int32(row), Int32(field)) == 1 {
                    values.append(nil)
                } else {
                    values.append(String(cString: PQgetvalue(result, Int32(row), Int32(field))))
                }
            }
            rows.append(PostgresRow(layout: layout, values: values))
        }
        let tag = String(cString: PQcmdStatus(result))
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return QueryResult(columns: columns, rows: rows, affectedRows: affected, commandTag: tag)
    }

    private static func serverError(_ result: OpaquePointer, statement: String) -> ServerError {
        func field(_ code: Character) -> String? {
            guard let value = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
            return String(cString: value)
        }
        var message = field("M") ?? String(cString: PQresultErrorMessage(result))
        message = message.trimmingCharacters(in: .whitespacesAndNewlines)
        let sqlState = field("C") ?? "XX000"
        OrcastraMetric.databaseErrors.increment(String(sqlState.prefix(2)))
        return ServerError(
            sqlState: sqlState,
            severity: field("V") ?? field("S") ?? "ERROR",
            message: message,
            detail: field("D"),
            hint: field("H"),
            position: field("P").flatMap { Int($0) },
            constraint: field("n"),
            statement: statement
        )
    }

    /// libpq's last message on one line (it spreads some over several, which breaks log lines).
    static func lastError(_ connection: OpaquePointer) -> String {
        String(cString: PQerrorMessage(connection))
            .split(whereSeparator: { $0.isNewline || $0 == "\t" })
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
            .joined(separator: " ")
    }

    /// Lays out the parameters as the C arrays libpq wants, for the duration of `body`.
    private static func withParameters<R>(
        _ bindings: [PostgresBinding],
        _ body: (Int32, UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>?) -> R
    ) -> R {
        if bindings.isEmpty { return body(0, nil, nil) }
        let types = bindings.map { Oid($0.type.rawValue) }
        // One buffer holds every value, NUL-terminated, so a statement costs one allocation.
        var buffer: [CChar] = []
        var offsets: [Int?] = []
        for binding in bindings {
            guard let text = binding.text else {
                offsets.append(nil)
                continue
            }
            offsets.append(buffer.count)
            buffer.append(contentsOf: text.utf8CString)
        }
        return buffer.withUnsafeBufferPointer { storage in
            let pointers: [UnsafePointer<CChar>?] = offsets.map { offset in
                offset.map { storage.baseAddress! + $0 }
            }
            return types.withUnsafeBufferPointer { typePointer in
                pointers.withUnsafeBufferPointer { valuePointer in
                    body(Int32(bindings.count), typePointer.baseAddress, valuePointer.baseAddress)
                }
            }
        }
    }
}

/// Holds libpq's cancel object so another thread can interrupt the statement in flight.
///
/// Each statement runs as a numbered generation. A cancel names the generation it is for and is
/// sent only while that generation is in flight; the lock is held across `PQcancel`, so the
/// connection's thread cannot finish that statement and start the next one meanwhile (a cancel
/// request landing then would kill the wrong statement).
final class QueryCanceller: @unchecked Sendable {
    private let lock = NSLock()
    private var handle: OpaquePointer?
    private var generation: UInt64 = 0
    private var inFlight: UInt64?

    func set(_ value: OpaquePointer?) {
        lock.lock()
        defer { lock.unlock() }
        if let handle { PQfreeCancel(handle) }
        handle = value
    }

    /// A statement starts; returns its generation.
    func begin() -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        generation += 1
        inFlight = generation
        return generation
    }

    func end(_ statement: UInt64) {
        lock.lock()
        defer { lock.unlock() }
        if inFlight == statement { inFlight = nil }
    }

    /// Blocks until the server has the request: call it on a thread of its own.
    func cancel(_ statement: UInt64) {
        lock.lock()
        defer { lock.unlock() }
        guard let handle, inFlight == statement else { return }
        var buffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(handle, &buffer, 256)
    }
}

/// Ties one call's task cancellation to the generation its statement runs as.
final class CancelTicket: Sendable {
    private enum State { case waiting, running(UInt64), cancelled }
    private let state = Mutex(State.waiting)

    /// The statement is about to run; false if the task was cancelled before it could start.
    func start(_ generation: UInt64) -> Bool {
        state.withLock { state in
            if case .cancelled = state { return false }
            state = .running(generation)
            return true
        }
    }

    /// Called from task cancellation, on whatever thread cancels: never blocks, sends the cancel
    /// request from a new thread.
    func requestCancel(_ canceller: QueryCanceller) {
        let generation: UInt64? = state.withLock { state in
            if case .running(let generation) = state { return generation }
            state = .cancelled
            return nil
        }
        guard let generation else { return }
        let thread = Thread { canceller.cancel(generation) }
        thread.name = "orcastra-cancel"
        thread.start()
    }
}
