import Foundation
import OrcastraPostgres

/// Applies the SQL migrations: each pending file in its own transaction, recorded with a checksum,
/// under an advisory lock so that any number of `orcastra migrate` runs at once are safe.
public struct Migrator: Sendable {
    public let migrations: [Migration]

    public init(migrations: [Migration]) {
        self.migrations = migrations
    }

    /// Arbitrary but fixed: the key every Orcastra process locks while it migrates.
    static let advisoryLockKey: Int64 = 7_275_316_105_102_401

    public enum State: String, Sendable { case applied, pending }

    public struct Entry: Sendable {
        public var version: Int
        public var file: String
        public var state: State
        public var appliedAt: Date?
    }

    /// What is applied and what is pending. Throws if an applied file was edited.
    public func status(on connection: PostgresConnection) async throws -> [Entry] {
        try await ensureHistoryTable(connection, create: false)
        let applied = try await appliedMigrations(connection)
        try await verify(applied, on: connection)
        return migrations.map { migration in
            let record = applied[migration.version]
            return Entry(version: migration.version, file: migration.file,
                         state: record == nil ? .pending : .applied, appliedAt: record?.appliedAt)
        }
    }

    public struct Report: Sendable {
        public var applied: [Migration]
        public var alreadyApplied: Int
    }

    /// Applies every pending migration, or with `dryRun` only says which it would apply.
    @discardableResult
    public func migrate(on connection: PostgresConnection, dryRun: Bool = false,
                        progress: @Sendable (Migration) -> Void = { _ in }) async throws -> Report {
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
                               progress: @Sendable (Migration) -> Void) async throws -> Report {
        try await ensureHistoryTable(connection, create: !dryRun)
        let applied = try await appliedMigrations(connection)
        try await verify(applied, on: connection)
        let pending = migrations.filter { applied[$0.version] == nil }
        if dryRun { return Report(applied: pending, alreadyApplied: applied.count) }
        for migration in pending {
            progress(migration)
            try await apply(migration, on: connection)
        }
        return Report(applied: pending, alreadyApplied: applied.count)
    }

    private func apply(_ migration: Migration, on connection: PostgresConnection) async throws {
        let started = ContinuousClock.now
        let checksum = try await Self.checksum(migration.sql, on: connection)
        try await connection.withTransaction { connection in
            for statement in SQLStatementSplitter.split(migration.sql) {
                do {
                    try connection.executeSimple(statement.text)
                } catch {
                    throw MigrationError.failed(file: migration.file, line: statement.line, statement: statement.text, underlying: error)
                }
            }
            let elapsed = ContinuousClock.now - started
            let milliseconds = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
            try await connection.execute("""
                INSERT INTO orcastra.schema_migrations (version, file, checksum, duration_ms)
                VALUES (\(migration.version), \(migration.file), \(checksum), \(milliseconds))
                """)
        }
    }

    private struct Applied {
        var file: String
        var checksum: String
        var appliedAt: Date
    }

    private func ensureHistoryTable(_ connection: PostgresConnection, create: Bool) async throws {
        guard create else { return }
        try await connection.executeSimple("""
            CREATE SCHEMA IF NOT EXISTS orcastra;
            CREATE TABLE IF NOT EXISTS orcastra.schema_migrations (
                version     integer PRIMARY KEY,
                file        text NOT NULL,
                checksum    text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now(),
                duration_ms integer NOT NULL
            );
            """)
    }

    private func appliedMigrations(_ connection: PostgresConnection) async throws -> [Int: Applied] {
        let exists = try await connection.queryRow("SELECT to_regclass('orcastra.schema_migrations') IS NOT NULL AS present")
        guard try exists.decode("present", as: Bool.self) else { return [:] }
        var applied: [Int: Applied] = [:]
        for row in try await connection.query("SELECT version, file, checksum, applied_at FROM orcastra.schema_migrations") {
            applied[try row.decode("version")] = Applied(file: try row.decode("file"), checksum: try row.decode("checksum"),
                                                         appliedAt: try row.decode("applied_at"))
        }
        return applied
    }

    /// Refuses edited files and versions this build does not know.
    private func verify(_ applied: [Int: Applied], on connection: PostgresConnection) async throws {
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for (version, record) in applied.sorted(by: { $0.key < $1.key }) {
            guard let migration = known[version] else {
                throw MigrationError.unknownApplied(version: version, file: record.file)
            }
            let current = try await Self.checksum(migration.sql, on: connection)
            if current != record.checksum {
                throw MigrationError.checksumMismatch(file: migration.file, applied: record.checksum, current: current)
            }
        }
    }

    /// SHA-256 of the file's text, computed by PostgreSQL (no crypto package needed for one hash).
    static func checksum(_ text: String, on connection: PostgresConnection) async throws -> String {
        try await connection.queryRow("SELECT encode(sha256(convert_to(\(text), 'UTF8')), 'hex') AS sum").decode("sum")
    }
}
