import Foundation
import OrcastraPostgres
import OrcastraTesting
import Testing

/// Every supported Swift type goes to the server as a parameter and comes back equal.
@Suite(.timeLimit(.minutes(5))) struct TypeRoundTripTests {
    struct Order: Codable, Equatable, Sendable {
        var id: Int
        var customer: String
        var tags: [String]
        var total: Double?
    }

    func connection() async throws -> PostgresConnection {
        try await PostgresConnection.connect(try await TestDatabases.shared.makeDatabase())
    }

    func roundTrip<Value: PostgresCodable & Equatable>(_ value: Value, cast: String, on connection: PostgresConnection) async throws {
        let row = try await connection.queryRow("SELECT \(value)::\(unescaped: cast) AS value")
        #expect(try row.decode("value", as: Value.self) == value, "\(cast) round trip of \(String(describing: value))")
    }

    @Test func scalars() async throws {
        let connection = try await connection()
        for value in [0, 1, -1, Int.max, Int.min] { try await roundTrip(value, cast: "int8", on: connection) }
        try await roundTrip(Int32.max, cast: "int4", on: connection)
        try await roundTrip(Int16.min, cast: "int2", on: connection)
        for value in [0.0, -1.5, 3.141592653589793, 1e300, .infinity, -.infinity] {
            try await roundTrip(value, cast: "float8", on: connection)
        }
        let nan = try await connection.queryRow("SELECT \(Double.nan)::float8 AS value").decode("value", as: Double.self)
        #expect(nan.isNaN)
        try await roundTrip(true, cast: "bool", on: connection)
        try await roundTrip(false, cast: "bool", on: connection)
        for text in ["", "plain", "ünïcødé ✓ 🎻", "quote ' and \" and \\ and $1", "line\nbreak\ttab"] {
            try await roundTrip(text, cast: "text", on: connection)
        }
        try await roundTrip(UUID(), cast: "uuid", on: connection)
        try await roundTrip(Data([0, 1, 2, 254, 255]), cast: "bytea", on: connection)
        try await roundTrip(Data(), cast: "bytea", on: connection)
        await connection.close()
    }

    @Test func datesKeepMicroseconds() async throws {
        let connection = try await connection()
        let dates = [
            Date(timeIntervalSince1970: 0),
            Date(timeIntervalSince1970: 1_764_067_252.123456),
            Date(timeIntervalSince1970: -86_400 * 365.25 * 100 + 0.5),
            Date(timeIntervalSince1970: 4_102_444_800.000001),
        ]
        for date in dates {
            let back = try await connection.queryRow("SELECT \(date)::timestamptz AS value").decode("value", as: Date.self)
            #expect(abs(back.timeIntervalSince1970 - date.timeIntervalSince1970) < 0.000_002, "\(date) came back as \(back)")
        }
        // A server-side timestamp in another zone decodes to the same instant.
        try await connection.execute("SET TimeZone = 'Asia/Kolkata'")
        let zoned = try await connection.queryRow("SELECT '2026-01-02 03:04:05.678+00'::timestamptz AS value").decode("value", as: Date.self)
        #expect(zoned.timeIntervalSince1970 == 1_767_323_045.678)
        await connection.close()
    }

    @Test func nullsAndOptionals() async throws {
        let connection = try await connection()
        let none: Int? = nil
        let row = try await connection.queryRow("SELECT \(none)::int8 AS a, \(Optional(5))::int8 AS b")
        #expect(try row.decode("a", as: Int?.self) == nil)
        #expect(try row.decode("b", as: Int?.self) == 5)
        #expect(throws: PostgresError.self) { try row.decode("a", as: Int.self) }
        await connection.close()
    }

    @Test func arrays() async throws {
        let connection = try await connection()
        try await roundTrip([1, 2, 3], cast: "int8[]", on: connection)
        try await roundTrip([Int](), cast: "int8[]", on: connection)
        try await roundTrip(["a", "b c", "with \"quotes\"", "back\\slash", "NULL", "{braces}", ""], cast: "text[]", on: connection)
        try await roundTrip([UUID(), UUID()], cast: "uuid[]", on: connection)
        try await roundTrip([true, false], cast: "bool[]", on: connection)
        let withNull: [String?] = ["x", nil]
        try await roundTrip(withNull, cast: "text[]", on: connection)
        await connection.close()
    }

    @Test func jsonbCodable() async throws {
        let connection = try await connection()
        let order = Order(id: 7, customer: "Zoë", tags: ["rush", "gift"], total: nil)
        let back = try await connection.queryRow("SELECT \(try Jsonb(order)) AS value").decode("value", as: Jsonb<Order>.self)
        #expect(back.value == order)
        let field = try await connection.queryRow("SELECT \(try Jsonb(order))->>'customer' AS name").decode("name", as: String.self)
        #expect(field == "Zoë")
        let raw = try await connection.queryRow("SELECT \(JSONText(#"{"a": [1, 2]}"#)) AS value").decode("value", as: JSONText.self)
        #expect(raw.text == #"{"a": [1, 2]}"#)
        await connection.close()
    }

    @Test func interpolationIsNeverSpliced() async throws {
        let connection = try await connection()
        let hostile = "'; DROP TABLE orcastra.schema_migrations; --"
        let back = try await connection.queryRow("SELECT \(hostile)::text AS value").decode("value", as: String.self)
        #expect(back == hostile)
        let sql: SQL = "SELECT \(1) + \(2)"
        #expect(sql.text == "SELECT $1 + $2")
        let combined = sql + " + \(3)"
        #expect(combined.text == "SELECT $1 + $2 + $3")
        let sum = try await connection.queryRow(SQL("SELECT (") + combined + ") AS total").decode("total", as: Int.self)
        #expect(sum == 6)
        await connection.close()
    }
}
