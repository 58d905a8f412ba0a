import Foundation
import OrcastraDevDB
import OrcastraPostgres
import OrcastraTesting
import Testing

/// What the connection layer does when its server fails over: a demoted primary or a standby answers
/// writes with 25006 (read_only_sql_transaction), and a multi-host connection string must reach
/// whichever host is the primary.
@Suite(.timeLimit(.minutes(3))) struct FailoverConnectionTests {
    /// A connection stuck on a read-only server (a demoted primary keeps its sessions) would fail
    /// every write forever: it is retired instead, so the pool's next connection goes through
    /// `target_session_attrs=read-write` to the new primary.
    @Test func readOnlyAnswerRetiresTheConnection() async throws {
        let url = try await TestDatabases.shared.makeDatabase()
        let pool = PostgresPool(conninfo: url, maximumConnections: 1)
        try await pool.query("CREATE TABLE marks (id int)")
        // As a demoted server would: every transaction on this session is read-only.
        try await pool.query("SET default_transaction_read_only = on")
        let error = await #expect(throws: PostgresError.self) { try await pool.query("INSERT INTO marks VALUES (1)") }
        #expect(error?.sqlState == "25006")
        // The next statement gets a fresh session, which can write.
        try await pool.query("INSERT INTO marks VALUES (2)")
        #expect(try await pool.query("SELECT id FROM marks").rows.count == 1)
        await pool.shutdown()
    }

    @Test func readOnlyAnswerInAPipelineRetiresTheConnection() async throws {
        let connection = try await PostgresConnection.connect(try await TestDatabases.shared.makeDatabase())
        try await connection.execute("CREATE TABLE marks (id int)")
        try await connection.execute("SET default_transaction_read_only = on")
        let error = await #expect(throws: PostgresError.self) {
            try await connection.pipeline(["INSERT INTO marks VALUES (\(1))", "SELECT 1"])
        }
        #expect(error?.sqlState == "25006")
        #expect(connection.isBroken)
        await connection.close()
    }

    /// A server process killed under the connection (as when a primary crashes) is a lost
    /// connection, retired. (Here libpq already reports the connection bad; the error libpq makes
    /// without a SQLSTATE while its status still looks fine, seen in FailoverTests, is not
    /// reproduced by this test.) On a server of the test's own: killing a backend makes PostgreSQL
    /// restart every session.
    @Test func killedServerProcessIsALostConnection() async throws {
        let folder = URL(fileURLWithPath: "/tmp/orcastra-kill-\(UUID().uuidString.prefix(8).lowercased())")
        let server = try LocalPostgres(dataDirectory: folder, options: .init(durable: false, maxConnections: 20))
        defer { try? server.destroyBlocking() }
        let connection = try await PostgresConnection.connect(try await server.start())
        let backend = try await connection.queryRow("SELECT pg_backend_pid() AS pid").decode("pid", as: Int32.self)
        #expect(kill(backend, SIGKILL) == 0)
        #expect(await waitUntil(within: .seconds(10)) { processIsGone(backend) })
        for statement: SQL in ["SELECT 1", "INSERT INTO nowhere VALUES (1)"] {
            let error = await #expect(throws: PostgresError.self) { try await connection.query(statement) }
            guard case .connectionLost = error else {
                Issue.record("expected a lost connection, got \(String(describing: error))")
                break
            }
        }
        #expect(connection.isBroken)
        await connection.close()
    }

    /// libpq tries the hosts in order; with `target_session_attrs=read-write` it skips one that is
    /// down (here: a port nobody listens on) and reaches the next.
    @Test func multiHostURLReachesTheHostThatAnswers() async throws {
        let url = try await TestDatabases.shared.makeDatabase()
        let (host, port, database) = try Self.parts(url)
        let deadPort = try Self.unusedPort()
        let encoded = host.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? host
        let multi = "postgresql://postgres@/\(database)?host=\(encoded),\(encoded)&port=\(deadPort),\(port)&target_session_attrs=read-write&connect_timeout=5"
        #expect(ConnectionAddress.parseProblem(multi) == nil)
        let connection = try await PostgresConnection.connect(multi)
        #expect(try await connection.queryRow("SELECT current_database() AS d").decode("d", as: String.self) == database)
        await connection.close()
        // Rewriting the database keeps every host, every port and the session attributes.
        let other = ConnectionAddress.replacingDatabase(in: multi, with: "postgres")
        let admin = try await PostgresConnection.connect(other)
        #expect(try await admin.queryRow("SELECT current_database() AS d").decode("d", as: String.self) == "postgres")
        await admin.close()
        #expect(other.contains("target_session_attrs='read-write'"))
        // The same in key=value form.
        let keywords = "host='\(host),\(host)' port='\(deadPort),\(port)' dbname='\(database)' user=postgres target_session_attrs=read-write"
        let viaKeywords = try await PostgresConnection.connect(keywords)
        await viaKeywords.close()
    }

    @Test(arguments: [
        ("postgresql://app@db1:5433,db2:5434/orders?target_session_attrs=read-write", "app@db1:5433,db2:5434/orders"),
        ("postgresql://app@db1,db2/orders", "app@db1:5432,db2:5432/orders"),
        ("host=db1,db2 port=6432 dbname=orders user=app", "app@db1:6432,db2:6432/orders"),
        ("host=db1 port=5433 dbname=orders user=app", "app@db1:5433/orders"),
    ])
    func multiHostAddressesAreDescribedHostByHost(conninfo: String, described: String) {
        #expect(ConnectionAddress.describe(conninfo) == described)
    }

    /// PgBouncer in transaction mode (before 1.21) cannot keep a session's named prepared statements:
    /// such a connection must not make any.
    @Test func withoutPreparedStatementsNothingIsPrepared() async throws {
        let connection = try await PostgresConnection.connect(try await TestDatabases.shared.makeDatabase(), preparedStatements: false)
        for value in 1...3 { _ = try await connection.query("SELECT \(value)::int AS v") }
        _ = try await connection.pipeline(["SELECT \(1)::int AS v", "SELECT \(2)::int AS v"])
        #expect(try await connection.queryRow("SELECT count(*)::int AS n FROM pg_prepared_statements").decode("n", as: Int.self) == 0)
        await connection.close()
        let preparing = try await PostgresConnection.connect(try await TestDatabases.shared.makeDatabase())
        _ = try await preparing.query("SELECT \(1)::int AS v")
        #expect(try await preparing.queryRow("SELECT count(*)::int AS n FROM pg_prepared_statements").decode("n", as: Int.self) > 0)
        await preparing.close()
    }

    /// host, port and database of a conninfo as `TestDatabases` returns it.
    static func parts(_ conninfo: String) throws -> (String, String, String) {
        let described = conninfo
        func value(_ key: String) -> String? {
            guard let range = described.range(of: "\(key)='") else { return nil }
            let rest = described[range.upperBound...]
            return rest.firstIndex(of: "'").map { String(rest[..<$0]) }
        }
        guard let host = value("host"), let port = value("port"), let database = value("dbname") else {
            throw PostgresError.connectionFailed(address: conninfo, message: "the test server's conninfo lacks host, port or dbname")
        }
        return (host, port, database)
    }

    static func unusedPort() throws -> Int {
        try LocalPostgres.freePort()
    }
}
