import Foundation
import OrcastraPostgres
import OrcastraTesting
import Synchronization
import Testing

@Suite(.timeLimit(.minutes(5))) struct ConcurrencyTests {
    /// Proof that libpq never blocks Swift's shared pool (two threads here): 8 sleeping queries
    /// overlap on the server — on pool threads at most two would run at a time — every statement
    /// runs on the connection's own thread, and a timer on the pool keeps firing meanwhile.
    /// The overlap is read from the server's clock, not the test's wall clock: other suites of this
    /// process keep the two cores busy, and a wall-clock bound failed under that load.
    @Test func blockingCallsStayOffTheCooperativePool() async throws {
        let url = try await TestDatabases.shared.makeDatabase()
        var connections: [PostgresConnection] = []
        for _ in 0..<8 { connections.append(try await PostgresConnection.connect(url)) }
        let worstLateness = Mutex(Duration.zero)
        let ticks = Atomic<Int>(0)
        let ticker = Task {
            var expected = ContinuousClock.now
            while !Task.isCancelled {
                expected = expected.advanced(by: .milliseconds(20))
                try? await Task.sleep(until: expected)
                let lateness = ContinuousClock.now - expected
                worstLateness.withLock { $0 = max($0, lateness) }
                ticks.add(1, ordering: .relaxed)
            }
        }
        // Each query's start (when the server received it) and end (after its sleep).
        let intervals = try await withThrowingTaskGroup(of: (Date, Date).self) { group in
            for connection in connections {
                group.addTask {
                    let row = try await connection.queryRow("""
                        SELECT s.started, clock_timestamp() AS ended
                        FROM (SELECT statement_timestamp() AS started, pg_sleep(0.5) AS slept OFFSET 0) AS s
                        """)
                    return (try row.decode("started", as: Date.self), try row.decode("ended", as: Date.self))
                }
            }
            var all: [(Date, Date)] = []
            for try await interval in group { all.append(interval) }
            return all
        }
        ticker.cancel()
        _ = await ticker.value
        let lastStart = intervals.map(\.0).max()!, firstEnd = intervals.map(\.1).min()!
        #expect(lastStart < firstEnd, "the 8 sleeps did not all overlap: the last started \(lastStart.timeIntervalSince(firstEnd)) s after the first ended")
        for connection in connections {
            let name = await connection.executingThreadName
            #expect(name == "orcastra-pg", "ran on \(String(describing: name))")
        }
        // The timer is only required to have kept running, not to be punctual (busy cores).
        let worst = worstLateness.withLock { $0 }
        #expect(ticks.load(ordering: .relaxed) > 0)
        #expect(worst < .seconds(5), "the shared pool's timer was late by up to \(worst)")
        for connection in connections { await connection.close() }
    }

    @Test func poolBoundsConnectionsAndQueuesWaiters() async throws {
        let url = try await TestDatabases.shared.makeDatabase()
        let pool = PostgresPool(conninfo: url, maximumConnections: 3)
        let gauge = Gauge()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<12 {
                group.addTask {
                    try await pool.withConnection { connection in
                        gauge.enter()
                        try await connection.query("SELECT pg_sleep(0.05)")
                        gauge.leave()
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(gauge.peak == 3)
        let stats = await pool.statistics
        #expect(stats.open == 3 && stats.waiting == 0)
        // Client backends only: an autovacuum worker on the new database shows under its name too.
        let backends = try await pool.query("""
            SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'
            """)
        #expect(try backends.first?.decode("n", as: Int.self) ?? 0 <= 3)
        await pool.shutdown()
    }

    @Test func cancelledWaiterLeavesTheLine() async throws {
        let url = try await TestDatabases.shared.makeDatabase()
        let pool = PostgresPool(conninfo: url, maximumConnections: 1)
        let holder = Task { try await pool.withConnection { try await $0.query("SELECT pg_sleep(0.5)") } }
        try await Task.sleep(for: .milliseconds(100))
        let waiter = Task { try await pool.withConnection { try await $0.queryRow("SELECT 1 AS one") } }
        try await Task.sleep(for: .milliseconds(50))
        #expect(await pool.statistics.waiting == 1)
        waiter.cancel()
        let outcome = await waiter.result
        guard case .failure(let error) = outcome else { Issue.record("the cancelled waiter got a connection"); return }
        #expect(error is CancellationError)
        #expect(await pool.statistics.waiting == 0)
        _ = try await holder.value
        // The pool still serves the next caller.
        #expect(try await pool.withConnection { try await $0.queryRow("SELECT 1 AS one").decode("one", as: Int.self) } == 1)
        await pool.shutdown()
    }

    /// The pool reads a returned connection's transaction status from what its last statement
    /// recorded (no hop onto its thread): an idle one is lent again, one left inside a transaction
    /// — by `query` or by `executeSimple` — is closed, never lent with the transaction open.
    @Test func connectionLeftInATransactionIsNotLentAgain() async throws {
        let url = try await TestDatabases.shared.makeDatabase()
        let pool = PostgresPool(conninfo: url, maximumConnections: 1)
        func pid(_ connection: PostgresConnection) async throws -> Int {
            try await connection.queryRow("SELECT pg_backend_pid() AS pid").decode("pid", as: Int.self)
        }
        let first = try await pool.withConnection { connection in
            let pid = try await pid(connection)
            #expect(connection.wasIdleAfterLastStatement)
            return pid
        }
        #expect(try await pool.withConnection { try await pid($0) } == first, "an idle connection is lent again")
        let inTransaction = try await pool.withConnection { connection in
            try await connection.execute("BEGIN")
            #expect(!connection.wasIdleAfterLastStatement)
            return try await pid(connection)
        }
        let afterQuery = try await pool.withConnection { connection in
            #expect(await connection.transactionStatus == .idle)
            try await connection.executeSimple("BEGIN; SELECT 1")
            #expect(!connection.wasIdleAfterLastStatement)
            return try await pid(connection)
        }
        #expect(afterQuery != inTransaction, "the connection left in a transaction by query was replaced")
        let afterSimple = try await pool.withConnection { connection in
            #expect(await connection.transactionStatus == .idle)
            return try await pid(connection)
        }
        #expect(afterSimple != afterQuery, "the connection left in a transaction by executeSimple was replaced")
        await pool.shutdown()
    }

    @Test func brokenConnectionIsReplaced() async throws {
        let url = try await TestDatabases.shared.makeDatabase()
        let pool = PostgresPool(conninfo: url, maximumConnections: 1)
        let pid = try await pool.withConnection { try await $0.queryRow("SELECT pg_backend_pid() AS pid").decode("pid", as: Int.self) }
        let admin = try await PostgresConnection.connect(url)
        try await admin.execute("SELECT pg_terminate_backend(\(pid)::int)")
        try await Task.sleep(for: .milliseconds(100))
        await #expect(throws: PostgresError.self) {
            try await pool.withConnection { try await $0.query("SELECT 1") }
        }
        let newPID = try await pool.withConnection { try await $0.queryRow("SELECT pg_backend_pid() AS pid").decode("pid", as: Int.self) }
        #expect(newPID != pid)
        await admin.close()
        await pool.shutdown()
    }
}

/// Counts how many callers are inside at once, and the most there ever were.
final class Gauge: Sendable {
    private let state = Mutex((current: 0, peak: 0))
    func enter() { state.withLock { $0.current += 1; $0.peak = max($0.peak, $0.current) } }
    func leave() { state.withLock { $0.current -= 1 } }
    var peak: Int { state.withLock { $0.peak } }
}
