import Foundation
import OrcastraPostgres
import OrcastraTesting
import Testing

@Suite(.timeLimit(.minutes(5))) struct ErrorAndTransactionTests {
    @Test func uniqueViolationCarriesSQLState() async throws {
        let connection = try await PostgresConnection.connect(try await TestDatabases.shared.makeDatabase())
        try await connection.execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
        try await connection.execute("INSERT INTO items VALUES (\(1), \("one"))")
        let error = await #expect(throws: PostgresError.self) {
            try await connection.execute("INSERT INTO items VALUES (\(1), \("again"))")
        }
        #expect(error?.sqlState == "23505")
        guard case .server(let server) = error else { Issue.record("not a server error"); return }
        #expect(server.constraint == "items_pkey")
        #expect(server.detail?.contains("Key (id)=(1) already exists") == true)
        #expect(server.statement.contains("INSERT INTO items"))
        #expect(server.description.hasPrefix("PostgreSQL error 23505: duplicate key value"))
        #expect(!server.description.contains("\n"))
        await connection.close()
    }

    @Test func syntaxErrorHasPositionAndHint() async throws {
        let connection = try await PostgresConnection.connect(try await TestDatabases.shared.makeDatabase())
        let error = await #expect(throws: PostgresError.self) { try await connection.query("SELEC 1") }
        #expect(error?.sqlState == "42601")
        if case .server(let server) = error { #expect(server.position == 1) }
        let missing = await #expect(throws: PostgresError.self) { try await connection.query("SELECT * FROM no_such_table") }
        #expect(missing?.sqlState == "42P01")
        // The connection stays usable after errors.
        #expect(try await connection.queryRow("SELECT 1 AS one").decode("one", as: Int.self) == 1)
        await connection.close()
    }

    @Test func transactionRollsBackOnThrowAndCommitsOtherwise() async throws {
        struct Boom: Error {}
        let connection = try await PostgresConnection.connect(try await TestDatabases.shared.makeDatabase())
        try await connection.execute("CREATE TABLE ledger (amount int)")
        await #expect(throws: Boom.self) {
            try await connection.withTransaction { connection in
                try await connection.execute("INSERT INTO ledger VALUES (\(10))")
                throw Boom()
            }
        }
        #expect(try await connection.queryRow("SELECT count(*) AS n FROM ledger").decode("n", as: Int.self) == 0)
        #expect(await connection.transactionStatus == .idle)
        let inserted = try await connection.withTransaction { connection in
            try await connection.execute("INSERT INTO ledger VALUES (\(20)), (\(30))")
        }
        #expect(inserted == 2)
        #expect(try await connection.queryRow("SELECT sum(amount) AS s FROM ledger").decode("s", as: Int.self) == 50)
        // A failing statement inside rolls back everything before it.
        await #expect(throws: PostgresError.self) {
            try await connection.withTransaction { connection in
                try await connection.execute("INSERT INTO ledger VALUES (\(40))")
                try await connection.execute("INSERT INTO ledger VALUES (\("not a number"))")
            }
        }
        #expect(try await connection.queryRow("SELECT count(*) AS n FROM ledger").decode("n", as: Int.self) == 2)
        await connection.close()
    }

    @Test func pipelineRunsABatchAtomically() async throws {
        let connection = try await PostgresConnection.connect(try await TestDatabases.shared.makeDatabase())
        try await connection.execute("CREATE TABLE t (v int UNIQUE)")
        let results = try await connection.pipeline((1...50).map { "INSERT INTO t VALUES (\($0)) RETURNING v" })
        #expect(results.count == 50)
        #expect(try results[49].first?.decode("v", as: Int.self) == 50)
        await #expect(throws: PostgresError.self) {
            try await connection.pipeline(["INSERT INTO t VALUES (\(100))", "INSERT INTO t VALUES (\(1))", "INSERT INTO t VALUES (\(101))"])
        }
        #expect(try await connection.queryRow("SELECT count(*) AS n FROM t").decode("n", as: Int.self) == 50)
        #expect(try await connection.queryRow("SELECT 2 AS two").decode("two", as: Int.self) == 2)
        await connection.close()
    }

    @Test func unreachableServerSaysWhere() async throws {
        let error = await #expect(throws: PostgresError.self) {
            try await PostgresConnection.connect("postgresql://nobody:secret@127.0.0.1:1/nowhere?connect_timeout=2")
        }
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains("nobody@127.0.0.1:1/nowhere"))
        #expect(!text.contains("secret"))
    }
}
