import CLibPQ
import Foundation
import Logging
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
    private let logger: Logger
    /// Statement text → the name it is prepared under on this connection. Hot statements (claim,
    /// complete) are then parsed and planned once per connection instead of on every call.
    private var prepared: [String: String] = [:]
    private static let maximumPrepared = 256

    private init(address: String, logger: Logger) {
        executor = ThreadExecutor(name: "orcastra-pg")
        self.address = address
        self.logger = logger
    }

    /// Connects with anything libpq accepts: a `postgresql://` URL, `key=value` pairs, or "" to use
    /// only the `PG*` environment variables.
    public static func connect(
        _ conninfo: String,
        logger: Logger = Logger(label: "orcastra.postgres")
    ) async throws -> PostgresConnection {
        let connection = PostgresConnection(address: ConnectionAddress.describe(conninfo), logger: logger)
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
            throw PostgresError.connectionFailed(address: address, message: Self.lastError(connection))
        }
        // Server notices (e.g. "relation already exists, skipping") are not errors: keep them out of stderr.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        canceller.set(PQgetCancel(connection))
        try executeSimple("SET DateStyle = 'ISO'; SET TimeZone = 'UTC'; SET extra_float_digits = 3")
    }

    /// Closes the connection and ends its thread. Safe to call twice.
    public func close() {
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
        let connection = try live()
        let canceller = self.canceller
        return try await withTaskCancellationHandler {
            let name = try preparedName(for: sql, on: connection)
            let result = Self.withParameters(sql.bindings) { count, types, values in
                if let name {
                    return PQexecPrepared(connection, name, count, values, nil, nil, 0)
                }
                return PQexecParams(connection, sql.text, count, types, values, nil, nil, 0)
            }
            return try consume(result, statement: sql.text)
        } onCancel: {
            canceller.cancel()
        }
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
        for sql in statements { try Self.validate(sql) }
        let connection = try live()
        guard PQenterPipelineMode(connection) == 1 else { throw connectionError(statement: "pipeline") }
        defer { PQexitPipelineMode(connection) }

        enum Expected { case preparation(text: String), statement(SQL) }
        var expected: [Expected] = []
        for sql in statements {
            var name = prepared[sql.text]
            if name == nil, prepared.count < Self.maximumPrepared {
                let fresh = "orcastra_\(prepared.count + 1)"
                let types = sql.bindings.map { Oid($0.type.rawValue) }
                guard PQsendPrepare(connection, fresh, sql.text, Int32(types.count), types) == 1 else {
                    throw connectionError(statement: sql.text)
                }
                prepared[sql.text] = fresh  // confirmed (or withdrawn) when its result is read
                expected.append(.preparation(text: sql.text))
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

        var results: [QueryResult] = []
        var failure: (any Error)?
        for item in expected {
            switch item {
            case .preparation(let text):
                var ok = false
                while let result = PQgetResult(connection) {
                    ok = ok || PQresultStatus(result) == PGRES_COMMAND_OK
                    if PQresultStatus(result) == PGRES_FATAL_ERROR, failure == nil {
                        failure = PostgresError.server(Self.serverError(result, statement: text))
                    }
                    PQclear(result)
                }
                if !ok { prepared[text] = nil }
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
        // The sync point's own result closes the batch.
        if let sync = PQgetResult(connection) {
            let status = PQresultStatus(sync)
            PQclear(sync)
            if status != PGRES_PIPELINE_SYNC, failure == nil {
                failure = PostgresError.connectionLost(message: "pipeline ended without its sync result")
            }
        }
        if let failure { throw failure }
        return results
    }

    /// The name `sql` is prepared under on this connection, preparing it (one extra round trip,
    /// once) if it is new; nil once the cache is full.
    private func preparedName(for sql: SQL, on connection: OpaquePointer) throws -> String? {
        if let name = prepared[sql.text] { return name }
        guard prepared.count < Self.maximumPrepared else { return nil }
        let name = "orcastra_\(prepared.count + 1)"
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
                throw PostgresError.connectionLost(message: Self.lastError(handle))
            }
            throw PostgresError.server(Self.serverError(result, statement: statement))
        }
    }

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
        return ServerError(
            sqlState: field("C") ?? "XX000",
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

/// Holds libpq's cancel object so another thread can interrupt a running statement.
final class QueryCanceller: @unchecked Sendable {
    private let lock = NSLock()
    private var handle: OpaquePointer?

    func set(_ value: OpaquePointer?) {
        lock.lock()
        defer { lock.unlock() }
        if let handle { PQfreeCancel(handle) }
        handle = value
    }

    func cancel() {
        lock.lock()
        defer { lock.unlock() }
        guard let handle else { return }
        var buffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(handle, &buffer, 256)
    }
}
