import Foundation
import OrcastraPostgres

/// Applies the SQL files, under an advisory lock so that any number of `orcastra migrate` runs at
/// once are safe:
/// - numbered migrations (`NNNN_name.sql`): each pending one once, immutable after that (checksum
///   verified), recorded in `orcastra.schema_migrations`;
/// - then repeatable files (`functions/*.sql`) in file-name order: each new or changed one again,
///   recorded with its checksum in `orcastra.schema_repeatables`.
///
/// Each file is sent whole (simple query protocol) together with its bookkeeping row, so nothing
/// has to split SQL: a numbered migration in its own transaction, the repeatable files that changed
/// all in one (a running process sees either the old rules or the new ones, never a mix).
public struct Migrator: Sendable {
    public let migrations: [Migration]
    public let repeatables: [RepeatableMigration]

    public init(migrations: [Migration], repeatables: [RepeatableMigration] = []) {
        self.migrations = migrations
        self.repeatables = repeatables
    }

    /// Both kinds of file from a `Migrations` folder: `NNNN_name.sql` and `functions/*.sql`.
    /// Refuses a folder that is missing, a file, or holds neither kind.
    public static func load(from directory: URL) throws -> Migrator {
        let migrator = Migrator(migrations: try Migration.load(from: directory),
                                repeatables: try RepeatableMigration.load(fromMigrations: directory))
        if migrator.migrations.isEmpty && migrator.repeatables.isEmpty { throw MigrationError.folderEmpty(directory.relativePath) }
        return migrator
    }

    /// The files that ship with Orcastra (see `Migration.bundledDirectory()`).
    public static func bundled() throws -> Migrator {
        try load(from: Migration.bundledDirectory())
    }

    /// Arbitrary but fixed: the key every Orcastra process locks while it migrates.
    static let advisoryLockKey: Int64 = 7_275_316_105_102_401

    /// A numbered migration is `applied` as it is on disk, `pending`, or `edited` since it was
    /// applied (which `migrate` refuses: applied migrations are immutable).
    public enum State: String, Sendable { case applied, pending, edited }

    public struct Entry: Sendable {
        public var version: Int
        public var file: String
        public var state: State
        public var appliedAt: Date?
        /// For `edited`: the refusal `migrate` throws, naming the file and what to do.
        public var refusal: MigrationError?
    }

    /// A repeatable file is `applied` as it is on disk, `changed` since it was applied, or `new`.
    public enum RepeatableState: String, Sendable { case applied, changed, new }

    public struct RepeatableEntry: Sendable {
        public var file: String
        public var state: RepeatableState
        /// When the current or, for `changed`, the previous text was applied.
        public var appliedAt: Date?
    }

    /// What is applied, pending or edited since it was applied. Throws if the database has a
    /// migration this build does not know (`unknownApplied`).
    public func status(on connection: PostgresConnection) async throws -> [Entry] {
        try await entries(try await appliedMigrations(connection), on: connection)
    }

    /// The state of every numbered migration against what the database recorded: the one check
    /// behind both `status` and the refusal of `migrate`.
    private func entries(_ applied: [Int: Applied], on connection: PostgresConnection) async throws -> [Entry] {
        let known = Set(migrations.map(\.version))
        if let (version, record) = applied.sorted(by: { $0.key < $1.key }).first(where: { !known.contains($0.key) }) {
            throw MigrationError.unknownApplied(version: version, file: record.file)
        }
        var entries: [Entry] = []
        for migration in migrations {
            guard let record = applied[migration.version] else {
                entries.append(Entry(version: migration.version, file: migration.file, state: .pending))
                continue
            }
            let current = try await Self.checksum(migration.sql, on: connection)
            let refusal = current == record.checksum
                ? nil : MigrationError.checksumMismatch(file: migration.file, applied: record.checksum, current: current)
            entries.append(Entry(version: migration.version, file: migration.file, state: refusal == nil ? .applied : .edited,
                                 appliedAt: record.appliedAt, refusal: refusal))
        }
        return entries
    }

    /// Which repeatable files are applied, changed or new.
    public func repeatableStatus(on connection: PostgresConnection) async throws -> [RepeatableEntry] {
        let recorded = try await appliedRepeatables(connection)
        var entries: [RepeatableEntry] = []
        for repeatable in repeatables {
            guard let record = recorded[repeatable.file] else {
                entries.append(RepeatableEntry(file: repeatable.file, state: .new, appliedAt: nil))
                continue
            }
            let current = try await Self.checksum(repeatable.sql, on: connection)
            entries.append(RepeatableEntry(file: repeatable.file, state: current == record.checksum ? .applied : .changed,
                                           appliedAt: record.appliedAt))
        }
        return entries
    }

    public struct Report: Sendable {
        /// Numbered migrations applied (or, in a dry run, that would be).
        public var applied: [Migration]
        public var alreadyApplied: Int
        /// Repeatable files applied because they were new or changed (or, in a dry run, that would be).
        public var repeatablesApplied: [RepeatableMigration] = []
        /// Repeatable files skipped because they are unchanged.
        public var repeatablesUnchanged: Int = 0
    }

    /// One file about to be applied, for progress output.
    public enum Step: Sendable {
        case migration(Migration)
        case repeatable(RepeatableMigration, RepeatableState)

        public var file: String {
            switch self {
            case .migration(let migration): migration.file
            case .repeatable(let repeatable, _): repeatable.file
            }
        }
    }

    /// Applies every pending migration, then every new or changed repeatable file; with `dryRun`
    /// only says which it would apply.
    @discardableResult
    public func migrate(on connection: PostgresConnection, dryRun: Bool = false,
                        progress: @Sendable (Step) -> Void = { _ in }) async throws -> Report {
        try await connection.execute("SELECT pg_advisory_lock(\(Self.advisoryLockKey))")
        do {
            let report = try await migrateLocked(connection, dryRun: dryRun, progress: progress)
            try await connection.execute("SELECT pg_advisory_unlock(\(Self.advisoryLockKey))")
            return report
        } catch {
            _ = try? await connection.execute("SELECT pg_advisory_unlock(\(Self.advisoryLockKey))")
            throw error
        }
    }

    private func migrateLocked(_ connection: PostgresConnection, dryRun: Bool,
                               progress: @Sendable (Step) -> Void) async throws -> Report {
        if !dryRun { try await ensureHistoryTables(connection) }
        let applied = try await appliedMigrations(connection)
        try await verify(applied, on: connection)
        let pending = migrations.filter { applied[$0.version] == nil }
        var report = Report(applied: pending, alreadyApplied: applied.count)
        for migration in pending {
            progress(.migration(migration))
            if !dryRun { try await apply(migration, on: connection) }
        }
        let states = try await repeatableStatus(on: connection)
        for (repeatable, entry) in zip(repeatables, states) {
            guard entry.state != .applied else {
                report.repeatablesUnchanged += 1
                continue
            }
            progress(.repeatable(repeatable, entry.state))
            report.repeatablesApplied.append(repeatable)
        }
        if !dryRun && !report.repeatablesApplied.isEmpty { try await apply(report.repeatablesApplied, on: connection) }
        if !dryRun && !(report.applied.isEmpty && report.repeatablesApplied.isEmpty) {
            try await applyGrants(connection)
        }
        return report
    }

    /// Keeps the least-privilege roles' privileges exact after anything changed: a re-created view
    /// loses its grants, a new function has none and is executable by PUBLIC until revoked
    /// (functions/access.sql, docs/security.md).
    private func applyGrants(_ connection: PostgresConnection) async throws {
        let present = try await connection.queryRow(
            "SELECT to_regprocedure('orcastra.apply_grants()') IS NOT NULL AS present").decode("present", as: Bool.self)
        guard present else { return }
        try await connection.withTransaction { connection in
            do {
                _ = try await connection.query("SELECT orcastra.apply_grants()")
            } catch {
                throw MigrationError.failed(file: "functions/access.sql", text: "SELECT orcastra.apply_grants()", underlying: error)
            }
        }
    }

    private func apply(_ migration: Migration, on connection: PostgresConnection) async throws {
        let checksum = try await Self.checksum(migration.sql, on: connection)
        try await runLocked(migration.file, [(migration.file, migration.sql, { @Sendable milliseconds in
            """
            INSERT INTO orcastra.schema_migrations (version, file, checksum, duration_ms)
            VALUES (\(migration.version), \(migration.file), \(checksum), \(milliseconds))
            """
        })], on: connection)
    }

    /// The new and changed repeatable files, in one transaction: the engine's rules are spread over
    /// several files (a report in report.sql counts down through settle.sql, fan-outs are made in
    /// fanout.sql), and processes keep running while `orcastra migrate` does. Applied one file per
    /// transaction, a running worker could call a new function of one file and an old one of
    /// another between two commits — a fan-out made without the edges an older count-down reads
    /// would never finish. All at once, every call sees the old set or the new one. Each file is
    /// still sent whole and recorded with its checksum; a failure names its file and line, and
    /// rolls back every file of the set.
    ///
    /// The set first locks every table, as a numbered file does (`runLocked`): some files lock
    /// tables of their own (audit.sql's resync of the live-step tables holds SHARE on steps,
    /// live_steps.sql drops a trigger of steps, step_references.sql creates triggers on the owned
    /// tables), and held from one file to the next those locks could deadlock with running workers
    /// half-way through. Locked first, the set waits once for the transactions in flight, and no
    /// transaction spans the old functions and the new.
    private func apply(_ repeatables: [RepeatableMigration], on connection: PostgresConnection) async throws {
        var files: [FileToRun] = []
        for repeatable in repeatables {
            let checksum = try await Self.checksum(repeatable.sql, on: connection)
            files.append((repeatable.file, repeatable.sql, { @Sendable milliseconds in
                """
                INSERT INTO orcastra.schema_repeatables (file, checksum, duration_ms)
                VALUES (\(repeatable.file), \(checksum), \(milliseconds))
                ON CONFLICT (file) DO UPDATE
                SET checksum = EXCLUDED.checksum, applied_at = now(), duration_ms = EXCLUDED.duration_ms
                """
            }))
        }
        try await runLocked("functions/*.sql (the changed repeatable files)", files, on: connection)
    }

    /// A file's name, its text, and its bookkeeping row given how long it took (ms).
    typealias FileToRun = (file: String, text: String, record: @Sendable (Int) -> SQL)

    /// Sends each file's text whole and records it, all in one transaction that first takes every
    /// table's lock (`lockTables`, named `label` if that fails). A failure is located from the
    /// server's error position.
    ///
    /// Processes may be running while `orcastra migrate` does (upgrades with running workers,
    /// docs/operations.md): the transaction can lose a deadlock to one of them (40P01) or time out
    /// on a lock (55P03). It was rolled back whole, so it is run again, a few times, after a short
    /// pause.
    private func runLocked(_ label: String, _ files: [FileToRun], on connection: PostgresConnection) async throws {
        var attempt = 1
        while true {
            do {
                try await connection.withTransaction { connection in
                    try await Self.lockTables(label, on: connection)
                    for file in files {
                        let started = ContinuousClock.now
                        do {
                            try connection.executeSimple(file.text)
                        } catch {
                            throw MigrationError.failed(file: file.file, text: file.text, underlying: error, rolledBackWith: files.count - 1)
                        }
                        let elapsed = ContinuousClock.now - started
                        try await connection.execute(file.record(Int(elapsed.components.seconds * 1000
                                                                     + elapsed.components.attoseconds / 1_000_000_000_000_000)))
                    }
                }
                return
            } catch MigrationError.failed(_, _, _, let underlying as PostgresError, _)
                        where ["40P01", "55P03"].contains(underlying.sqlState ?? "") && attempt < Self.lockConflictAttempts {
                try await Task.sleep(for: .milliseconds(100 * (1 << min(attempt, 4))))
                attempt += 1
            }
        }
    }

    /// How many times a file (or the set of repeatable files) is sent when it keeps losing to other
    /// sessions' locks (pauses 0.2, 0.4, 0.8, then 1.6 s: about 13 s in all, plus up to
    /// `tableLockTimeout` a try for the table locks). Five (3 s) were not enough in one CI run: an
    /// orchestrator and a worker retrying on a half-migrated database won five deadlocks in a row.
    static let lockConflictAttempts = 10

    /// Takes an ACCESS EXCLUSIVE lock on every table of the schema before a numbered file (or the
    /// set of changed repeatable files) runs, in one statement, in the engine's order (steps, then tasks, then the rest by name). Running
    /// processes then never see a file half-way through holding some of its tables while it waits
    /// for another that one of them holds and wants to lock after (the deadlock one CI run lost
    /// five times in a row on 0014): the file waits once, before it holds anything of its own, for
    /// the transactions in flight, and new ones queue behind it. A deadlock is still possible while
    /// that one statement takes its locks one by one, and is answered like one in the file: sent
    /// again (`runLocked`). Waits at most `tableLockTimeout`.
    static func lockTables(_ file: String, on connection: isolated PostgresConnection) async throws {
        let tables = try await connection.queryRow("""
            SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', '
                              ORDER BY c.relname <> 'steps', c.relname <> 'tasks', c.relname) AS tables
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'orcastra' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
            """).decode("tables", as: String?.self)
        guard let tables else { return }
        let lock = "SET LOCAL lock_timeout = '\(tableLockTimeout)'; LOCK TABLE \(tables) IN ACCESS EXCLUSIVE MODE"
        do {
            try connection.executeSimple(lock)
        } catch {
            throw MigrationError.failed(file: file, text: lock, underlying: error)
        }
        try connection.executeSimple("SET LOCAL lock_timeout = DEFAULT")
    }

    /// The longest a numbered file waits for the running processes' transactions before it is
    /// sent again (a lock timeout is answered like a deadlock).
    static let tableLockTimeout = "2s"

    private struct Applied {
        var file: String
        var checksum: String
        var appliedAt: Date
    }

    private func ensureHistoryTables(_ connection: PostgresConnection) async throws {
        // Only when missing: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the
        // schema exists, which a member of orcastra_admin need not have (docs/security.md).
        if try await connection.queryRow("SELECT to_regnamespace('orcastra') IS NULL AS missing").decode("missing", as: Bool.self) {
            try await connection.executeSimple("CREATE SCHEMA IF NOT EXISTS orcastra")
        }
        try await connection.executeSimple("""
            CREATE TABLE IF NOT EXISTS orcastra.schema_migrations (
                version     integer PRIMARY KEY,
                file        text NOT NULL,
                checksum    text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now(),
                duration_ms integer NOT NULL
            );
            CREATE TABLE IF NOT EXISTS orcastra.schema_repeatables (
                file        text PRIMARY KEY,
                checksum    text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now(),
                duration_ms integer NOT NULL
            );
            """)
    }

    private func tableExists(_ name: String, _ connection: PostgresConnection) async throws -> Bool {
        try await connection.queryRow("SELECT to_regclass(\(name)) IS NOT NULL AS present").decode("present", as: Bool.self)
    }

    private func appliedMigrations(_ connection: PostgresConnection) async throws -> [Int: Applied] {
        guard try await tableExists("orcastra.schema_migrations", connection) else { return [:] }
        var applied: [Int: Applied] = [:]
        for row in try await connection.query("SELECT version, file, checksum, applied_at FROM orcastra.schema_migrations") {
            applied[try row.decode("version")] = Applied(file: try row.decode("file"), checksum: try row.decode("checksum"),
                                                         appliedAt: try row.decode("applied_at"))
        }
        return applied
    }

    private func appliedRepeatables(_ connection: PostgresConnection) async throws -> [String: Applied] {
        guard try await tableExists("orcastra.schema_repeatables", connection) else { return [:] }
        var applied: [String: Applied] = [:]
        for row in try await connection.query("SELECT file, checksum, applied_at FROM orcastra.schema_repeatables") {
            let file: String = try row.decode("file")
            applied[file] = Applied(file: file, checksum: try row.decode("checksum"), appliedAt: try row.decode("applied_at"))
        }
        return applied
    }

    /// Refuses edited files and versions this build does not know.
    private func verify(_ applied: [Int: Applied], on connection: PostgresConnection) async throws {
        if let refusal = try await entries(applied, on: connection).lazy.compactMap(\.refusal).first { throw refusal }
    }

    /// SHA-256 of the file's text, computed by PostgreSQL (no crypto package needed for one hash).
    static func checksum(_ text: String, on connection: PostgresConnection) async throws -> String {
        try await connection.queryRow("SELECT encode(sha256(convert_to(\(text), 'UTF8')), 'hex') AS sum").decode("sum")
    }
}
