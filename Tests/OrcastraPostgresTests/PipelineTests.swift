import Foundation
import OrcastraPostgres
import OrcastraTesting
import Testing

/// After any failed pipeline the connection is back to normal: out of pipeline mode, no results
/// left queued, and no prepared-statement names it believes in that the server does not have.
@Suite struct PipelineTests {
    func assertUsable(_ connection: PostgresConnection) async throws {
        #expect(await connection.transactionStatus == .idle)
        #expect(try await connection.queryRow("SELECT \(41) + 1 AS n").decode("n", as: Int.self) == 42)
        let results = try await connection.pipeline(["SELECT \(1) AS a", "SELECT \(2) AS b", "SELECT 3 AS c"])
        #expect(try results.map { try $0.rows[0].decode(at: 0, as: Int.self) } == [1, 2, 3])
    }

    @Test func secondStatementFails() async throws {
        let connection = try await PostgresConnection.connect(try await TestDatabases.shared.makeDatabase())
        let error = await #expect(throws: PostgresError.self) {
            try await connection.pipeline(["SELECT \(1) AS a", "SELECT 1 / \(0) AS boom", "SELECT 3 AS c"])
        }
        #expect(error?.sqlState == "22012")
        try await assertUsable(connection)
        await connection.close()
    }

    @Test func newStatementFailsToPrepare() async throws {
        let connection = try await PostgresConnection.connect(try await TestDatabases.shared.makeDatabase())
        let error = await #expect(throws: PostgresError.self) {
            try await connection.pipeline(["SELECT \(1) AS first_new", "SELEC \(2)", "SELECT 4 AS never_prepared"])
        }
        #expect(error?.sqlState == "42601")
        try await assertUsable(connection)
        // The statements whose PREPARE was aborted must be prepared again, not looked up by a stale name.
        #expect(try await connection.queryRow("SELECT 4 AS never_prepared").decode(at: 0, as: Int.self) == 4)
        #expect(try await connection.queryRow("SELECT \(1) AS first_new").decode(at: 0, as: Int.self) == 1)
        await #expect(throws: PostgresError.self) { try await connection.query("SELEC \(2)") }
        try await assertUsable(connection)
        await connection.close()
    }

    /// libpq refuses to queue a statement with more than 65,535 parameters after the first one was
    /// already queued; the connection must not be left stuck in pipeline mode.
    @Test func statementRefusedWhileQueueing() async throws {
        let connection = try await PostgresConnection.connect(try await TestDatabases.shared.makeDatabase())
        var huge: SQL = "SELECT 0"
        for value in 0..<65_536 { huge.append(", \(value)") }
        await #expect(throws: PostgresError.self) {
            try await connection.pipeline(["SELECT \(1) AS queued_first", huge])
        }
        try await assertUsable(connection)
        #expect(try await connection.queryRow("SELECT \(1) AS queued_first").decode(at: 0, as: Int.self) == 1)
        await connection.close()
    }
}
