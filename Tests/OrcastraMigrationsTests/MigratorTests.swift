import Foundation
import OrcastraMigrations
import OrcastraPostgres
import OrcastraTesting
import Testing

@Suite(.timeLimit(.minutes(5))) struct MigratorTests {
    /// A folder of migrations written for one test.
    func folder(_ files: [String: String]) throws -> URL {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("orcastra-migrations-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        return directory
    }

    func emptyDatabase() async throws -> PostgresConnection {
        try await PostgresConnection.connect(try await TestDatabases.shared.makeEmptyDatabase())
    }

    @Test func freshDatabaseGetsEveryBundledMigrationThenNothing() async throws {
        let connection = try await emptyDatabase()
        let migrator = Migrator(migrations: try Migration.bundled())
        #expect(!migrator.migrations.isEmpty)
        let first = try await migrator.migrate(on: connection)
        #expect(first.applied.map(\.file) == migrator.migrations.map(\.file))
        let second = try await migrator.migrate(on: connection)
        #expect(second.applied.isEmpty)
        #expect(second.alreadyApplied == migrator.migrations.count)
        let status = try await migrator.status(on: connection)
        #expect(status.allSatisfy { $0.state == .applied })
        let tables = try await connection.queryRow("SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'orcastra'").decode("n", as: Int.self)
        #expect(tables >= 8)
        await connection.close()
    }

    @Test func dryRunChangesNothing() async throws {
        let connection = try await emptyDatabase()
        let directory = try folder(["0001_a.sql": "CREATE TABLE a (id int);"])
        let report = try await Migrator(migrations: try Migration.load(from: directory)).migrate(on: connection, dryRun: true)
        #expect(report.applied.map(\.file) == ["0001_a.sql"])
        let exists = try await connection.queryRow("SELECT to_regclass('public.a') IS NOT NULL AS present").decode("present", as: Bool.self)
        #expect(!exists)
        await connection.close()
    }

    @Test func concurrentRunsApplyEachFileOnce() async throws {
        let url = try await TestDatabases.shared.makeEmptyDatabase()
        let directory = try folder([
            "0001_a.sql": "CREATE TABLE a (id int); SELECT pg_sleep(0.2);",
            "0002_b.sql": "CREATE TABLE b (id int);",
        ])
        let migrations = try Migration.load(from: directory)
        let reports = try await withThrowingTaskGroup(of: Migrator.Report.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    let connection = try await PostgresConnection.connect(url)
                    let report = try await Migrator(migrations: migrations).migrate(on: connection)
                    await connection.close()
                    return report
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(reports.map(\.applied.count).reduce(0, +) == 2)
        let connection = try await PostgresConnection.connect(url)
        let rows = try await connection.queryRow("SELECT count(*) AS n FROM orcastra.schema_migrations").decode("n", as: Int.self)
        #expect(rows == 2)
        await connection.close()
    }

    @Test func editedAppliedFileIsRefusedByName() async throws {
        let connection = try await emptyDatabase()
        let original = try folder(["0001_a.sql": "CREATE TABLE a (id int);"])
        try await Migrator(migrations: try Migration.load(from: original)).migrate(on: connection)
        let edited = try folder(["0001_a.sql": "CREATE TABLE a (id bigint);", "0002_b.sql": "CREATE TABLE b (id int);"])
        let error = await #expect(throws: MigrationError.self) {
            try await Migrator(migrations: try Migration.load(from: edited)).migrate(on: connection)
        }
        #expect("\(error.map { "\($0)" } ?? "")".contains("Migration 0001_a.sql was edited after it was applied"))
        // Nothing after the refusal ran.
        let b = try await connection.queryRow("SELECT to_regclass('public.b') IS NOT NULL AS present").decode("present", as: Bool.self)
        #expect(!b)
        await connection.close()
    }

    @Test func failingMigrationRollsBackWhollyAndNamesTheStatement() async throws {
        let connection = try await emptyDatabase()
        let directory = try folder([
            "0001_ok.sql": "CREATE TABLE ok (id int);",
            "0002_bad.sql": """
                CREATE TABLE half (id int);
                -- a comment; with a semicolon
                INSERT INTO half VALUES ('$$;'::text::int);
                """,
        ])
        let error = await #expect(throws: MigrationError.self) {
            try await Migrator(migrations: try Migration.load(from: directory)).migrate(on: connection)
        }
        guard case .failed(let file, let line, let statement, _) = error else { Issue.record("wrong error: \(String(describing: error))"); return }
        #expect(file == "0002_bad.sql")
        #expect(line == 3)
        #expect(statement.hasPrefix("INSERT INTO half"))
        let half = try await connection.queryRow("SELECT to_regclass('public.half') IS NOT NULL AS present").decode("present", as: Bool.self)
        #expect(!half, "the failed file's first statement must be rolled back")
        let applied = try await connection.query("SELECT file FROM orcastra.schema_migrations ORDER BY version").rows.map { try $0.decode("file", as: String.self) }
        #expect(applied == ["0001_ok.sql"])
        await connection.close()
    }

    @Test func misnamedFilesAreRefused() throws {
        let directory = try folder(["1_a.sql": "SELECT 1;"])
        #expect(throws: MigrationError.self) { try Migration.load(from: directory) }
    }

    @Test(arguments: [
        ("SELECT 1; SELECT 2;", ["SELECT 1;", "SELECT 2;"]),
        ("SELECT ';'; SELECT \"a;b\" FROM t;", ["SELECT ';';", "SELECT \"a;b\" FROM t;"]),
        ("CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql; SELECT 3;",
         ["CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;", "SELECT 3;"]),
        ("-- only; a comment\nSELECT 4; /* block; /* nested; */ */ SELECT 5;", ["SELECT 4;", "SELECT 5;"]),
        ("SELECT 'it''s; fine';", ["SELECT 'it''s; fine';"]),
    ])
    func splitterKeepsQuotedSemicolons(sql: String, expected: [String]) {
        #expect(SQLStatementSplitter.split(sql).map(\.text) == expected)
    }
}
