import Foundation
import OrcastraPostgres
import OrcastraTesting
import Synchronization
import Testing

/// Cancelling a task cancels the statement that task is running, and never the one after it.
@Suite struct CancellationTests {
    @Test func cancelledSleepThenTheNextStatementRuns() async throws {
        let url = try await TestDatabases.shared.makeDatabase()
        let connection = try await PostgresConnection.connect(url)
        let observer = try await PostgresConnection.connect(url)
        let sleeper = Task { try await connection.query("SELECT pg_sleep(10)") }
        // Cancel once the server runs the sleep (a fixed delay raced the statement's start on a busy
        // machine). Only this test's database: pg_stat_activity is the whole server's, and a sleep
        // of another test's, seen there, once had ours cancelled before it started (CI).
        #expect(await waitUntil(within: .seconds(10)) {
            try await observer.queryRow("""
                SELECT count(*) AS n FROM pg_stat_activity
                WHERE datname = current_database() AND state = 'active' AND query = 'SELECT pg_sleep(10)'
                """)
                .decode("n", as: Int.self) == 1
        })
        await observer.close()
        let cancelled = ContinuousClock.now
        sleeper.cancel()
        let result = await sleeper.result
        #expect(ContinuousClock.now - cancelled < .seconds(5), "the sleep ran on after its cancel")
        guard case .failure(let error as PostgresError) = result else {
            Issue.record("the sleep was not cancelled by the server: \(result)")
            return
        }
        #expect(error.sqlState == "57014")
        #expect(try await connection.queryRow("SELECT \(1) AS one").decode("one", as: Int.self) == 1)
        await connection.close()
    }

    /// Cancels land while statements complete: with the cancel not tied to its statement, the
    /// request reaches the server after the connection moved on and kills a bystander, a statement
    /// of a task nobody cancelled.
    @Test(.timeLimit(.minutes(4))) func racingCancelsNeverHitALaterStatement() async throws {
        let connection = try await PostgresConnection.connect(try await TestDatabases.shared.makeDatabase())
        let stop = StopFlag()
        let bystanders = [Task { await Self.bystand(connection, until: stop) }, Task { await Self.bystand(connection, until: stop) }]
        var cancelledVictims = 0
        for _ in 0..<1_500 {
            let victim = Task { try await connection.query("SELECT pg_sleep(\(Double.random(in: 0...0.0005)))") }
            try await Task.sleep(for: .microseconds(Int.random(in: 0...1_000)))
            victim.cancel()
            if case .failure = await victim.result { cancelledVictims += 1 }
        }
        stop.flag.store(true, ordering: .relaxed)
        var count = 0
        var failures: [String] = []
        for bystander in bystanders {
            let (done, failed) = await bystander.value
            count += done
            failures += failed
        }
        #expect(failures.isEmpty, "\(failures.count) of \(count) statements nobody cancelled failed: \(failures.prefix(3))")
        #expect(cancelledVictims > 0, "the test never managed to cancel anything")
        #expect(try await connection.queryRow("SELECT \(1) AS one").decode("one", as: Int.self) == 1)
        await connection.close()
    }

    final class StopFlag: Sendable { let flag = Atomic<Bool>(false) }

    /// Runs short statements back to back until told to stop; returns how many ran and which failed.
    static func bystand(_ connection: PostgresConnection, until stop: StopFlag) async -> (Int, [String]) {
        var failures: [String] = []
        var count = 0
        while !stop.flag.load(ordering: .relaxed) {
            do { try await connection.query("SELECT pg_sleep(0.0005), \(count) AS n") } catch { failures.append("\(error)") }
            count += 1
        }
        return (count, failures)
    }
}
