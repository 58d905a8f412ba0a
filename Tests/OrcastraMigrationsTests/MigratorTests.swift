import Foundation
@testable import OrcastraMigrations
import OrcastraPostgres
import OrcastraTesting
import Testing

@Suite(.timeLimit(.minutes(5))) struct MigratorTests {
    /// A folder of migrations written for one test.
    func folder(_ files: [String: String]) throws -> URL {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("orcastra-migrations-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try write(files, into: directory)
        return directory
    }

    /// Writes files (names may include `functions/`) into `directory`, replacing any of the same name.
    func write(_ files: [String: String], into directory: URL) throws {
        for (name, text) in files {
            let url = directory.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
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

    /// 0004 scopes idempotency keys per template on a database that already has keyed tasks:
    /// their scope is filled in, and the keys keep returning their tasks afterwards.
    @Test func templateLifecycleMigrationKeepsExistingKeys() async throws {
        let connection = try await emptyDatabase()
        let bundled = try Migrator.bundled()
        try await Migrator(migrations: bundled.migrations.filter { $0.version <= 2 }).migrate(on: connection)
        try await connection.execute("""
            INSERT INTO orcastra.templates (namespace, name, version, definition, source, content_hash, step_count) VALUES
              ('shop', 'a', '1.0.0', '{"steps": [{"name": "s", "namespace": "shop", "depends_on": [], "retry": {"max_attempts": 1}}]}', '', 'x', 1),
              ('shop', 'b', '1.0.0', '{"steps": [{"name": "s", "namespace": "shop", "depends_on": [], "retry": {"max_attempts": 1}}]}', '', 'y', 1)
            """)
        try await connection.execute("""
            INSERT INTO orcastra.tasks (template_id, idempotency_key, context)
            SELECT id, CASE WHEN name = 'a' THEN 'k1' ELSE 'k2' END, '{}'::jsonb FROM orcastra.templates
            UNION ALL SELECT id, NULL, '{}' FROM orcastra.templates
            """)
        try await bundled.migrate(on: connection)
        let scopes = try await connection.query("SELECT idempotency_key, idempotency_scope FROM orcastra.tasks ORDER BY idempotency_key NULLS LAST")
            .rows.map { "\(try $0.decode("idempotency_key", as: String?.self) ?? "-") \(try $0.decode("idempotency_scope", as: String?.self) ?? "-")" }
        #expect(scopes == ["k1 shop/a", "k2 shop/b", "- -", "- -"])
        // k1 still returns its task in shop/a; in shop/b it is a new key.
        let again = try await connection.queryRow("SELECT created FROM orcastra.create_task_by_name('shop', 'a', p_idempotency_key => 'k1')")
        #expect(try !again.decode("created", as: Bool.self))
        let elsewhere = try await connection.queryRow("SELECT created FROM orcastra.create_task_by_name('shop', 'b', p_idempotency_key => 'k1')")
        #expect(try elsewhere.decode("created", as: Bool.self))
        let constraints = try await connection.queryRow("""
            SELECT count(*) FILTER (WHERE conname = 'tasks_idempotency_key_key') AS global FROM pg_constraint
            WHERE conrelid = 'orcastra.tasks'::regclass
            """)
        #expect(try constraints.decode("global", as: Int.self) == 0)
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

    @Test func statusReportsAnEditedFileWithTheRefusalMigrateThrows() async throws {
        let connection = try await emptyDatabase()
        let directory = try folder(["0001_a.sql": "CREATE TABLE a (id int);", "0002_b.sql": "CREATE TABLE b (id int);"])
        try await Migrator.load(from: directory).migrate(on: connection)
        try write(["0001_a.sql": "CREATE TABLE a (id bigint);", "0003_c.sql": "CREATE TABLE c (id int);"], into: directory)
        let edited = try Migrator.load(from: directory)
        let status = try await edited.status(on: connection)
        #expect(status.map(\.state) == [.edited, .applied, .pending])
        #expect(status[0].appliedAt != nil)
        let refusal = try #require(status[0].refusal)
        let thrown = await #expect(throws: MigrationError.self) { try await edited.migrate(on: connection, dryRun: true) }
        #expect("\(refusal)" == "\(thrown.map { "\($0)" } ?? "")")
        #expect("\(refusal)".hasPrefix("Migration 0001_a.sql was edited after it was applied"))
        await connection.close()
    }

    @Test func aWrongFolderOrFileIsNamed() throws {
        let directory = try folder(["0001_a.sql": "SELECT 1;"])
        let cases: [(URL, String)] = [
            (URL(fileURLWithPath: "/nonexistent/migrations"), "/nonexistent/migrations does not exist: give the folder that holds the migrations"),
            (directory.appendingPathComponent("0001_a.sql"), "\(directory.path)/0001_a.sql is a file, not a folder: give the folder"),
            (try folder(["README.md": "none here"]), "holds no .sql files: give the folder"),
        ]
        for (url, message) in cases {
            let error = #expect(throws: MigrationError.self) { try Migrator.load(from: url) }
            #expect(error?.concernsTheFolder == true)
            #expect("\(error.map { "\($0)" } ?? "")".contains(message))
        }
        try write(["functions/good.sql": "SELECT 1;"], into: directory)
        try Data([0xC3, 0x28]).write(to: directory.appendingPathComponent("functions/bad.sql"))
        let error = #expect(throws: MigrationError.self) { try Migrator.load(from: directory) }
        #expect("\(error.map { "\($0)" } ?? "")" == "\(directory.path)/functions/bad.sql is not UTF-8 text: save it as UTF-8.")
    }

    @Test func failingMigrationRollsBackWhollyAndNamesTheLine() async throws {
        let connection = try await emptyDatabase()
        let directory = try folder([
            "0001_ok.sql": "CREATE TABLE ok (id int);",
            "0002_bad.sql": """
                -- déjà vu: characters of several bytes before the error must not shift the line
                CREATE TABLE half (id int, note text DEFAULT 'a; b ✓');
                INSERT INTO half VALUES (1, '$$;');
                -- a comment; with a semicolon
                INSERT INTO half (id, no_such_column) VALUES (2, 'x');
                CREATE TABLE after_the_error (id int);
                """,
        ])
        let error = await #expect(throws: MigrationError.self) {
            try await Migrator.load(from: directory).migrate(on: connection)
        }
        guard case .failed(let file, let line, let lineText, let underlying, _) = error else { Issue.record("wrong error: \(String(describing: error))"); return }
        #expect(file == "0002_bad.sql")
        #expect(line == 5)
        #expect(lineText == "INSERT INTO half (id, no_such_column) VALUES (2, 'x');")
        #expect((underlying as? PostgresError)?.sqlState == "42703")
        let message = error.map { "\($0)" } ?? ""
        #expect(message.hasPrefix("0002_bad.sql failed at line 5 (INSERT INTO half (id, no_such_column) VALUES (2, 'x');) and was rolled back: PostgreSQL error 42703: column \"no_such_column\""), "\(message)")
        let half = try await connection.queryRow("SELECT to_regclass('public.half') IS NOT NULL AS present").decode("present", as: Bool.self)
        #expect(!half, "the failed file's first statements must be rolled back")
        let applied = try await connection.query("SELECT file FROM orcastra.schema_migrations ORDER BY version").rows.map { try $0.decode("file", as: String.self) }
        #expect(applied == ["0001_ok.sql"])
        await connection.close()
    }

    /// A file that loses to another session's lock (here a lock timeout, 55P03; a deadlock, 40P01,
    /// goes the same way) was rolled back whole: it is sent again and applies once the lock is gone.
    /// Seen in CI: 0014 lost a deadlock to an orchestrator already running on the half-migrated database.
    @Test func aFileThatLosesToAnotherSessionsLockIsSentAgain() async throws {
        let url = try await TestDatabases.shared.makeEmptyDatabase()
        let connection = try await PostgresConnection.connect(url)
        let directory = try folder(["0001_table.sql": "CREATE TABLE busy (id int);"])
        try await Migrator.load(from: directory).migrate(on: connection)
        try write(["0002_lock.sql": "SET LOCAL lock_timeout = '100ms';\nLOCK TABLE busy IN ACCESS EXCLUSIVE MODE;\nALTER TABLE busy ADD COLUMN note text;"],
                  into: directory)
        // Another session holds the table for about a second: the first attempts time out.
        let holder = try await PostgresConnection.connect(url)
        try await holder.execute("BEGIN")
        try await holder.execute("LOCK TABLE busy IN ACCESS SHARE MODE")
        let release = Task {
            try await Task.sleep(for: .milliseconds(900))
            try await holder.execute("COMMIT")
            await holder.close()
        }
        try await Migrator.load(from: directory).migrate(on: connection)
        try await release.value
        let note = try await connection.queryRow("SELECT count(*) AS n FROM information_schema.columns WHERE table_name = 'busy' AND column_name = 'note'")
        #expect(try note.decode("n", as: Int64.self) == 1)
        let applied = try await connection.query("SELECT file FROM orcastra.schema_migrations ORDER BY version").rows.map { try $0.decode("file", as: String.self) }
        #expect(applied == ["0001_table.sql", "0002_lock.sql"])
        await connection.close()
    }

    /// A numbered file runs holding every table of the schema already (ACCESS EXCLUSIVE, taken in
    /// one statement before its first): it never waits half-way for a running process's lock
    /// while holding some tables that process wants next. Repeatable files are not wrapped so.
    @Test func aNumberedFileRunsWithEveryTableOfTheSchemaLockedFirst() async throws {
        let connection = try await emptyDatabase()
        let directory = try folder(["0001_tables.sql": "CREATE TABLE orcastra.tasks (id int); CREATE TABLE orcastra.steps (id int);"])
        try await Migrator.load(from: directory).migrate(on: connection)
        let check = """
            DO $$
            DECLARE v_missing text;
            BEGIN
                SELECT string_agg(t, ', ') INTO v_missing FROM unnest(ARRAY['orcastra.tasks', 'orcastra.steps', 'orcastra.schema_migrations']) t
                WHERE NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = pg_backend_pid() AND l.relation = t::regclass
                                  AND l.mode = 'AccessExclusiveLock' AND l.granted);
                IF v_missing IS NOT NULL THEN RAISE EXCEPTION 'not locked before the file: %', v_missing; END IF;
            END $$;
            """
        try write(["0002_check.sql": check + "\nALTER TABLE orcastra.tasks ADD COLUMN note text;"], into: directory)
        try await Migrator.load(from: directory).migrate(on: connection)
        let note = try await connection.queryRow("SELECT count(*) AS n FROM information_schema.columns WHERE table_name = 'tasks' AND column_name = 'note'")
        #expect(try note.decode("n", as: Int64.self) == 1)
        await connection.close()
    }

    /// Text a statement splitter gets wrong: a backslash-escaped quote in an E'' string, and a
    /// SQL-standard function body whose inner statements end in semicolons.
    @Test func filesAreSentWholeSoTrickyTextApplies() async throws {
        let connection = try await emptyDatabase()
        let directory = try folder([
            "0001_tricky.sql": #"""
                CREATE TABLE notes (body text);
                INSERT INTO notes VALUES (E'it\'s; fine');
                CREATE FUNCTION add_note(note text) RETURNS void LANGUAGE sql
                BEGIN ATOMIC
                    INSERT INTO notes VALUES (note);
                    INSERT INTO notes VALUES (note || '; again');
                END;
                SELECT add_note('atomic');
                """#,
        ])
        try await Migrator.load(from: directory).migrate(on: connection)
        let bodies = try await connection.query("SELECT body FROM notes ORDER BY body").rows.map { try $0.decode("body", as: String.self) }
        #expect(bodies == ["atomic", "atomic; again", "it's; fine"])
        await connection.close()
    }

    @Test func misnamedFilesAreRefused() throws {
        let directory = try folder(["1_a.sql": "SELECT 1;"])
        #expect(throws: MigrationError.self) { try Migration.load(from: directory) }
    }

    // MARK: - Repeatable files (functions/*.sql)

    func repeatableState(_ migrator: Migrator, _ connection: PostgresConnection) async throws -> [String: Migrator.RepeatableState] {
        Dictionary(uniqueKeysWithValues: try await migrator.repeatableStatus(on: connection).map { ($0.file, $0.state) })
    }

    @Test func repeatableFilesRunAfterMigrationsAndAgainWhenChanged() async throws {
        let connection = try await emptyDatabase()
        let directory = try folder([
            "0001_table.sql": "CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2);",
            // Named to sort after the view that uses it would, if order were by anything but file name.
            "functions/10_count.sql": "CREATE OR REPLACE FUNCTION t_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM t $$;",
            "functions/20_view.sql": "CREATE OR REPLACE VIEW t_summary AS SELECT t_count() AS n;",
        ])
        let first = try Migrator.load(from: directory)
        #expect(first.repeatables.map(\.file) == ["functions/10_count.sql", "functions/20_view.sql"])
        #expect(try await repeatableState(first, connection) == ["functions/10_count.sql": .new, "functions/20_view.sql": .new])
        let report = try await first.migrate(on: connection)
        #expect(report.applied.map(\.file) == ["0001_table.sql"])
        #expect(report.repeatablesApplied.map(\.file) == ["functions/10_count.sql", "functions/20_view.sql"])
        #expect(try await connection.queryRow("SELECT n FROM t_summary").decode("n", as: Int.self) == 2)

        let again = try await first.migrate(on: connection)
        #expect(again.applied.isEmpty && again.repeatablesApplied.isEmpty && again.repeatablesUnchanged == 2)

        try write(["functions/10_count.sql": "CREATE OR REPLACE FUNCTION t_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) + 100 FROM t $$;",
                   "functions/30_new.sql": "CREATE OR REPLACE FUNCTION t_twice() RETURNS bigint LANGUAGE sql AS $$ SELECT 2 * t_count() $$;"],
                  into: directory)
        let edited = try Migrator.load(from: directory)
        #expect(try await repeatableState(edited, connection) == ["functions/10_count.sql": .changed, "functions/20_view.sql": .applied, "functions/30_new.sql": .new])
        // A dry run names them and changes nothing.
        let dry = try await edited.migrate(on: connection, dryRun: true)
        #expect(dry.repeatablesApplied.map(\.file) == ["functions/10_count.sql", "functions/30_new.sql"])
        #expect(try await connection.queryRow("SELECT n FROM t_summary").decode("n", as: Int.self) == 2)

        let changed = try await edited.migrate(on: connection)
        #expect(changed.repeatablesApplied.map(\.file) == ["functions/10_count.sql", "functions/30_new.sql"])
        #expect(changed.repeatablesUnchanged == 1)
        #expect(try await connection.queryRow("SELECT n FROM t_summary").decode("n", as: Int.self) == 102)
        #expect(try await connection.queryRow("SELECT t_twice() AS n").decode("n", as: Int.self) == 204)
        #expect(try await repeatableState(edited, connection).values.allSatisfy { $0 == .applied })
        let recorded = try await connection.query("SELECT file FROM orcastra.schema_repeatables ORDER BY file").rows.map { try $0.decode("file", as: String.self) }
        #expect(recorded == ["functions/10_count.sql", "functions/20_view.sql", "functions/30_new.sql"])
        await connection.close()
    }

    @Test func failingRepeatableFileRollsBackEveryChangedFileAndNamesTheLine() async throws {
        let connection = try await emptyDatabase()
        let directory = try folder([
            "0001_table.sql": "CREATE TABLE t (id int);",
            "functions/10_good.sql": "CREATE OR REPLACE FUNCTION good() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;",
            "functions/20_bad.sql": """
                CREATE OR REPLACE FUNCTION half_done() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;

                CREATE OR REPLACE VIEW broken AS SELECT missing_column FROM t;
                """,
        ])
        let error = await #expect(throws: MigrationError.self) {
            try await Migrator.load(from: directory).migrate(on: connection)
        }
        guard case .failed(let file, let line, let lineText, _, _) = error else { Issue.record("wrong error: \(String(describing: error))"); return }
        #expect(file == "functions/20_bad.sql")
        #expect(line == 3)
        #expect(lineText == "CREATE OR REPLACE VIEW broken AS SELECT missing_column FROM t;")
        let message = error.map { "\($0)" } ?? ""
        #expect(message.hasPrefix("functions/20_bad.sql failed at line 3 (CREATE OR REPLACE VIEW broken AS SELECT missing_column FROM t;) and was rolled back with the other changed repeatable files: "), "\(message)")
        let halfDone = try await connection.queryRow("SELECT to_regprocedure('half_done()') IS NOT NULL AS present").decode("present", as: Bool.self)
        #expect(!halfDone, "the failed file's first statement must be rolled back")
        // The changed files apply together or not at all: a running process never sees some new
        // and some old (Migrator.apply).
        let good = try await connection.queryRow("SELECT to_regprocedure('good()') IS NOT NULL AS present").decode("present", as: Bool.self)
        #expect(!good, "the files before the failed one must be rolled back with it")
        let recorded = try await connection.query("SELECT file FROM orcastra.schema_repeatables ORDER BY file").rows.map { try $0.decode("file", as: String.self) }
        #expect(recorded == [])
        await connection.close()
    }

    /// A lone changed repeatable file that fails took nothing else back with it, and says only
    /// that it was rolled back (it said "with the other changed repeatable files" whatever the set).
    @Test func aLoneFailingRepeatableFileSaysOnlyThatItWasRolledBack() async throws {
        let connection = try await emptyDatabase()
        let directory = try folder([
            "0001_table.sql": "CREATE TABLE t (id int);",
            "functions/10_good.sql": "CREATE OR REPLACE FUNCTION good() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;",
        ])
        _ = try await Migrator.load(from: directory).migrate(on: connection)
        try write(["functions/20_bad.sql": "CREATE OR REPLACE VIEW broken AS SELECT missing_column FROM t;"], into: directory)
        let error = await #expect(throws: MigrationError.self) {
            try await Migrator.load(from: directory).migrate(on: connection)
        }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.hasPrefix("functions/20_bad.sql failed at line 1 (CREATE OR REPLACE VIEW broken AS SELECT missing_column FROM t;) and was rolled back: "), "\(message)")
        let recorded = try await connection.query("SELECT file FROM orcastra.schema_repeatables ORDER BY file").rows.map { try $0.decode("file", as: String.self) }
        #expect(recorded == ["functions/10_good.sql"])
        await connection.close()
    }

    @Test(arguments: [
        (1, 1, "SELECT 1;"),
        (10, 1, "SELECT 1;"),
        (11, 2, "SELECT 'é✓';"),
        (33, 3, "SELECT nope;"),
    ])
    func errorPositionsMapToLines(position: Int, line: Int, text: String) {
        // Positions count characters (code points), not bytes: é and ✓ are one each.
        let file = "SELECT 1;\nSELECT 'é✓';\r\nSELECT nope;\n"
        let located = MigrationError.locate(position: position, in: file)
        #expect(located.line == line)
        #expect(located.text == text)
    }
}
