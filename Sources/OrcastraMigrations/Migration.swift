import Foundation

/// One numbered SQL file from `Migrations/`, e.g. `0001_initial_schema.sql`.
public struct Migration: Sendable, Equatable {
    public var version: Int
    /// The file name, which is what people see in messages.
    public var file: String
    public var sql: String

    /// Reads every `NNNN_name.sql` in `directory`, ordered by number; refuses misnamed files and
    /// duplicates, and a folder that is missing or unreadable. The repeatable files in `functions/`
    /// are `RepeatableMigration`s.
    public static func load(from directory: URL) throws -> [Migration] {
        var migrations: [Migration] = []
        for name in try SQLFiles.names(in: directory).sorted() {
            guard let prefix = name.split(separator: "_").first, prefix.count == 4, let version = Int(prefix), version > 0 else {
                throw MigrationError.badFileName(name)
            }
            migrations.append(Migration(version: version, file: name, sql: try SQLFiles.text(of: name, in: directory)))
        }
        migrations.sort { $0.version < $1.version }
        for (previous, next) in zip(migrations, migrations.dropFirst()) where previous.version == next.version {
            throw MigrationError.duplicateVersion(previous.file, next.file)
        }
        return migrations
    }

    /// The migrations that ship with Orcastra: the repository's `Migrations/` folder.
    ///
    /// Found through `ORCASTRA_MIGRATIONS_DIR`, then `share/orcastra/Migrations` beside the executable's
    /// folder (an installed copy, as in the Docker image), then the source tree this build came from.
    public static func bundled() throws -> [Migration] {
        try load(from: bundledDirectory())
    }

    public static func bundledDirectory() throws -> URL {
        let (directory, searched) = BundledResources.directory(named: "Migrations", environmentVariable: "ORCASTRA_MIGRATIONS_DIR")
        guard let directory else { throw MigrationError.bundleMissing(searched: searched) }
        return directory
    }
}
