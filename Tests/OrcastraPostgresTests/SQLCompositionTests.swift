import Foundation
import OrcastraPostgres
import OrcastraTesting
import Testing

@Suite struct SQLCompositionTests {
    /// `$1` inside a string literal of a nested fragment is text, not a placeholder: it must reach
    /// the server unchanged however the fragment is composed.
    @Test func dollarDigitsInLiteralsSurviveComposition() async throws {
        let connection = try await PostgresConnection.connect(try await TestDatabases.shared.makeDatabase())
        let inner: SQL = "SELECT \("widget") AS item, 'costs $1' AS label"
        let nested: SQL = "SELECT \(5) AS n, q.item, q.label FROM (\(inner)) AS q"
        let row = try await connection.queryRow(nested)
        #expect(try row.decode("n", as: Int.self) == 5)
        #expect(try row.decode("item", as: String.self) == "widget")
        #expect(try row.decode("label", as: String.self) == "costs $1")

        var appended: SQL = "SELECT \(7) AS n, "
        appended.append("'costs $1' AS label, \("gadget") AS item")
        let second = try await connection.queryRow(appended)
        #expect(try second.decode("n", as: Int.self) == 7)
        #expect(try second.decode("label", as: String.self) == "costs $1")
        #expect(try second.decode("item", as: String.self) == "gadget")

        let added = try await connection.queryRow(SQL("SELECT \(8) AS n, ") + SQL(unsafeRaw: "'costs $1' AS label"))
        #expect(try added.decode("label", as: String.self) == "costs $1")
        await connection.close()
    }

    @Test func textNumbersEveryValueOnce() {
        let inner: SQL = "b = \(2) AND c = \(3)"
        let sql: SQL = "a = \(1) AND \(inner) AND d = \(4) AND e = '$9'"
        #expect(sql.text == "a = $1 AND b = $2 AND c = $3 AND d = $4 AND e = '$9'")
        #expect(sql.bindings.map(\.text) == ["1", "2", "3", "4"])
    }

    @Test func identifiersWithQuotesSpacesAndCaseWork() async throws {
        let connection = try await PostgresConnection.connect(try await TestDatabases.shared.makeDatabase())
        let table = "Odd \"Quoted\" Table"
        let column = "Mixed Case"
        try await connection.execute("CREATE TABLE \(ident: table) (\(ident: column) int, \(ident: "select") text)")
        try await connection.execute("INSERT INTO \(ident: table) VALUES (\(7), \("x"))")
        let row = try await connection.queryRow("SELECT \(ident: column), \(ident: "select") FROM \(ident: table)")
        #expect(try row.decode("Mixed Case", as: Int.self) == 7)
        #expect(try row.decode("select", as: String.self) == "x")
        // The server stored the names exactly as given, case and quotes included.
        let stored = try await connection.query("SELECT relname FROM pg_class WHERE relname = \(table)")
        #expect(stored.count == 1)
        await #expect(throws: PostgresError.self) { try await connection.query("SELECT * FROM \(ident: "odd \"quoted\" table")") }
        await connection.close()
    }

    @Test func identifierQuotingAndNULRefusal() async throws {
        let quoted: SQL = "SELECT \(ident: "a\"b c") FROM \(ident: "T")"
        #expect(quoted.text == #"SELECT "a""b c" FROM "T""#)
        let connection = try await PostgresConnection.connect(try await TestDatabases.shared.makeDatabase())
        let error = await #expect(throws: PostgresError.self) { try await connection.query("SELECT 1 AS \(ident: "a\u{0}b")") }
        guard case .invalidIdentifier = error else { Issue.record("expected invalidIdentifier, got \(String(describing: error))"); return }
        #expect(try await connection.queryRow("SELECT 1 AS \(ident: "fine")").decode("fine", as: Int.self) == 1)
        await connection.close()
    }
}
