/// Why migrating stopped; each names the file concerned.
public enum MigrationError: Error, Sendable, CustomStringConvertible {
    case badFileName(String)
    case duplicateVersion(String, String)
    case bundleMissing(searched: [String])
    /// An applied file whose text changed since it ran.
    case checksumMismatch(file: String, applied: String, current: String)
    /// The database has a migration this build does not know: it was migrated by a newer Orcastra.
    case unknownApplied(version: Int, file: String)
    /// A statement in the file failed; the whole file was rolled back.
    case failed(file: String, line: Int, statement: String, underlying: any Error)

    public var description: String {
        switch self {
        case .badFileName(let name):
            "Migration file \(name) is misnamed: use a 4-digit number, an underscore and a name, like 0007_add_index.sql."
        case .duplicateVersion(let first, let second):
            "Migration files \(first) and \(second) share one number; renumber one of them."
        case .bundleMissing(let searched):
            "Orcastra's Migrations folder was not found (looked in \(searched.joined(separator: ", "))). Set ORCASTRA_MIGRATIONS_DIR to it."
        case .checksumMismatch(let file, let applied, let current):
            "Migration \(file) was edited after it was applied (checksum \(applied.prefix(12)) in the database, \(current.prefix(12)) on disk). Applied migrations are immutable: restore the file and put the change in a new migration."
        case .unknownApplied(let version, let file):
            "The database has migration \(version) (\(file)) that this Orcastra does not ship; it was migrated by a newer version. Upgrade Orcastra."
        case .failed(let file, let line, let statement, let underlying):
            "Migration \(file) failed at line \(line) and was rolled back: \(underlying) — statement: \(statement.prefix(200))"
        }
    }
}
