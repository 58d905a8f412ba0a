import Foundation
import Logging
import OrcastraMetrics

/// A bounded pool of connections.
///
/// At most `maximumConnections` are open at once; further callers wait in line (and leave the line
/// when their task is cancelled). A connection that broke, or that was handed back inside a
/// transaction, is closed and replaced instead of being reused.
public actor PostgresPool {
    public nonisolated let conninfo: String
    public nonisolated let maximumConnections: Int
    /// Whether its connections prepare named statements (see `PostgresConnection.usesPreparedStatements`).
    public nonisolated let preparedStatements: Bool
    private let logger: Logger

    private var idle: [PostgresConnection] = []
    private var openCount = 0
    private var waiters: [(id: UInt64, continuation: CheckedContinuation<PostgresConnection, any Error>)] = []
    private var nextWaiterID: UInt64 = 0
    private var isShutDown = false
    private var lent = 0
    /// The `pool` label of its gauges (docs/metrics.md); nil records none.
    private let metricsName: String?

    public init(conninfo: String, maximumConnections: Int = 10, logger: Logger = Logger(label: "orcastra.pool"),
                preparedStatements: Bool = PostgresConnection.preparedStatementsByDefault, metricsName: String? = nil) {
        precondition(maximumConnections > 0, "a pool needs at least one connection")
        self.conninfo = conninfo
        self.maximumConnections = maximumConnections
        self.preparedStatements = preparedStatements
        self.logger = logger
        self.metricsName = metricsName
    }

    /// Sets the pool's gauges after a change (three gauge stores; nothing without a metrics name).
    private func recordGauges() {
        guard let metricsName else { return }
        OrcastraMetric.poolConnections.set(Double(lent), metricsName, "in_use")
        OrcastraMetric.poolConnections.set(Double(idle.count), metricsName, "idle")
        OrcastraMetric.poolWaiting.set(Double(waiters.count), metricsName)
    }

    /// Lends a connection to `body` and takes it back whatever happens.
    public nonisolated func withConnection<Value: Sendable>(
        _ body: (PostgresConnection) async throws -> Value
    ) async throws -> Value {
        let connection = try await lend()
        do {
            let value = try await body(connection)
            await release(connection)
            return value
        } catch {
            await release(connection)
            throw error
        }
    }

    /// Runs `body` in a transaction on a pooled connection.
    public nonisolated func withTransaction<Value: Sendable>(
        _ body: @Sendable (isolated PostgresConnection) async throws -> Value
    ) async throws -> Value {
        try await withConnection { connection in
            try await connection.withTransaction(body)
        }
    }

    /// Runs one statement on a pooled connection.
    @discardableResult
    public nonisolated func query(_ sql: SQL) async throws -> QueryResult {
        try await withConnection { try await $0.query(sql) }
    }

    /// How many connections are open, idle and waited for; for tests and metrics.
    public var statistics: (open: Int, idle: Int, waiting: Int) {
        (openCount, idle.count, waiters.count)
    }

    /// Closes idle connections and fails every waiter; connections in use close when returned.
    public func shutdown() async {
        isShutDown = true
        let waiting = waiters
        waiters.removeAll()
        for waiter in waiting { waiter.continuation.resume(throwing: CancellationError()) }
        let connections = idle
        idle.removeAll()
        openCount -= connections.count
        for connection in connections { await connection.close() }
    }

    /// `acquire()`, counted in the pool's gauges.
    private func lend() async throws -> PostgresConnection {
        defer { recordGauges() }
        let connection = try await acquire()
        lent += 1
        return connection
    }

    func acquire() async throws -> PostgresConnection {
        try Task.checkCancellation()
        guard !isShutDown else { throw PostgresError.connectionLost(message: "the pool was shut down") }
        if let connection = idle.popLast() { return connection }
        if openCount < maximumConnections {
            openCount += 1
            do {
                return try await PostgresConnection.connect(conninfo, logger: logger, preparedStatements: preparedStatements)
            } catch {
                openCount -= 1
                throw error
            }
        }
        nextWaiterID += 1
        let id = nextWaiterID
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                } else {
                    waiters.append((id, continuation))
                    recordGauges()
                }
            }
        } onCancel: {
            Task { await self.cancelWaiter(id) }
        }
    }

    private func cancelWaiter(_ id: UInt64) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: index).continuation.resume(throwing: CancellationError())
    }

    func release(_ connection: PostgresConnection) async {
        lent -= 1
        defer { recordGauges() }
        // Recorded when its last statement ended: no hop onto the connection's thread (and back)
        // for the common case; anything else is asked of libpq itself.
        let reusable: Bool
        if connection.isBroken {
            reusable = false
        } else if connection.wasIdleAfterLastStatement {
            reusable = true
        } else {
            reusable = await connection.transactionStatus == .idle
        }
        if reusable && !isShutDown {
            if waiters.isEmpty {
                idle.append(connection)
            } else {
                waiters.removeFirst().continuation.resume(returning: connection)
            }
            return
        }
        await connection.close()
        openCount -= 1
        // The slot is free again: open a fresh connection for the next waiter, if any.
        guard !waiters.isEmpty, !isShutDown else { return }
        openCount += 1
        do {
            let replacement = try await PostgresConnection.connect(conninfo, logger: logger, preparedStatements: preparedStatements)
            if waiters.isEmpty {
                idle.append(replacement)
            } else {
                waiters.removeFirst().continuation.resume(returning: replacement)
            }
        } catch {
            openCount -= 1
            if !waiters.isEmpty { waiters.removeFirst().continuation.resume(throwing: error) }
        }
    }
}
