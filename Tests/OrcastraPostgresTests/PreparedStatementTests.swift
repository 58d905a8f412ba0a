import Foundation
import OrcastraPostgres
import OrcastraTesting
import Testing

/// A migration that changes what a function returns must not break connections that prepared a
/// call to it earlier ("cached plan must not change result type", SQLSTATE 0A000).
@Suite struct PreparedStatementTests {
    /// Replaces `f()` with one returning `columns` columns, from another connection.
    func replace(_ admin: PostgresConnection, columns: Int) async throws {
        let list = (1...columns).map { "c\($0) int" }.joined(separator: ", ")
        let values = (1...columns).map(String.init).joined(separator: ", ")
        try await admin.executeSimple("""
            DROP FUNCTION IF EXISTS f();
            CREATE FUNCTION f() RETURNS TABLE (\(list)) LANGUAGE sql AS $$ SELECT \(values) $$;
            CREATE OR REPLACE VIEW v AS SELECT \(values.split(separator: ",").enumerated().map { "\($0.element) AS c\($0.offset + 1)" }.joined(separator: ", "));
            """)
    }

    @Test func singleStatementSurvivesAReplacedFunction() async throws {
        let url = try await TestDatabases.shared.makeDatabase()
        let admin = try await PostgresConnection.connect(url)
        let worker = try await PostgresConnection.connect(url)
        try await replace(admin, columns: 1)
        #expect(try await worker.query("SELECT * FROM f()").columns.count == 1)
        #expect(try await worker.query("SELECT * FROM v").columns.count == 1)
        try await replace(admin, columns: 2)
        #expect(try await worker.query("SELECT * FROM f()").columns.count == 2)
        #expect(try await worker.query("SELECT * FROM v").columns.count == 2)
        try await replace(admin, columns: 3)
        let row = try await worker.queryRow("SELECT * FROM f()")
        #expect(try row.decode("c3", as: Int.self) == 3)
        await admin.close()
        await worker.close()
    }

    @Test func pipelineSurvivesAReplacedFunction() async throws {
        let url = try await TestDatabases.shared.makeDatabase()
        let admin = try await PostgresConnection.connect(url)
        let worker = try await PostgresConnection.connect(url)
        try await admin.execute("CREATE TABLE log (n int)")
        try await replace(admin, columns: 1)
        let batch: [SQL] = ["INSERT INTO log VALUES (\(1))", "SELECT * FROM f()", "SELECT \(2) AS two"]
        #expect(try await worker.pipeline(batch).map(\.columns.count) == [0, 1, 1])
        try await replace(admin, columns: 2)
        #expect(try await worker.pipeline(batch).map(\.columns.count) == [0, 2, 1])
        // The failed first attempt was rolled back: each batch inserted exactly one row.
        #expect(try await worker.queryRow("SELECT count(*) AS n FROM log").decode("n", as: Int.self) == 2)
        await admin.close()
        await worker.close()
    }

    @Test func transactionFailsOnceThenTheRetrySucceeds() async throws {
        let url = try await TestDatabases.shared.makeDatabase()
        let admin = try await PostgresConnection.connect(url)
        let worker = try await PostgresConnection.connect(url)
        try await replace(admin, columns: 1)
        let first = try await worker.withTransaction { try await $0.query("SELECT * FROM f()").columns.count }
        #expect(first == 1)
        try await replace(admin, columns: 2)
        // Inside a transaction block the statement cannot be re-run transparently…
        let error = await #expect(throws: PostgresError.self) {
            try await worker.withTransaction { try await $0.query("SELECT * FROM f()").columns.count }
        }
        #expect(error?.sqlState == "0A000")
        #expect(await worker.transactionStatus == .idle)
        // …but the caller's retry works, because the stale plans are gone.
        let retried = try await worker.withTransaction { try await $0.query("SELECT * FROM f()").columns.count }
        #expect(retried == 2)
        await admin.close()
        await worker.close()
    }

    /// Someone ran DEALLOCATE ALL (or a pooler lost the session's statements): 26000 is healed too.
    @Test func deallocatedStatementsAreRePrepared() async throws {
        let connection = try await PostgresConnection.connect(try await TestDatabases.shared.makeDatabase())
        #expect(try await connection.queryRow("SELECT \(1) AS one").decode("one", as: Int.self) == 1)
        try await connection.executeSimple("DEALLOCATE ALL")
        #expect(try await connection.queryRow("SELECT \(1) AS one").decode("one", as: Int.self) == 1)
        await connection.close()
    }
}
