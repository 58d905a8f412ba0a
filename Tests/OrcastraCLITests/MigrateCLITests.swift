import Foundation
import OrcastraTesting
import Testing

/// `orcastra migrate` and `migrate status` with a folder of their own (`--migrations`): what they
/// read, what they report, and the exit codes a deploy script gates on.
@Suite(.timeLimit(.minutes(5))) struct MigrateCLITests {
    let orcastra = CommandLineTool("orcastra")
    /// Nothing listens there: commands that must fail before connecting are run against it.
    let unreachable = "postgresql://ops@127.0.0.1:1/prod?connect_timeout=2"

    /// A folder of migrations (names may include `functions/`), unlike the bundled ones.
    func folder(_ files: [String: String]) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orcastra-cli-migrations-\(UUID().uuidString)")
        try write(files, into: directory)
        return directory
    }

    func write(_ files: [String: String], into directory: URL) throws {
        for (name, text) in files {
            let url = directory.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
    }

    static let files = [
        "0001_notes.sql": "CREATE TABLE notes (id int);",
        "functions/count.sql": "CREATE OR REPLACE FUNCTION note_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM notes $$;",
    ]

    func statusJSON(_ text: String) throws -> [[String: Any]] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]], "\(text)")
    }

    @Test func statusReadsTheGivenFolderAndExitsFiveWhilePending() async throws {
        let url = try await TestDatabases.shared.makeEmptyDatabase()
        let directory = try folder(Self.files)
        defer { try? FileManager.default.removeItem(at: directory) }

        let before = try await orcastra.run(["migrate", "status", "--migrations", directory.path, "--database-url", url])
        #expect(before.status == 5, "\(before.output)")
        #expect(before.standardOutput.contains("0001_notes.sql"), "\(before.output)")
        #expect(!before.standardOutput.contains("0001_core_schema.sql"), "\(before.output)")
        #expect(before.standardOutput.contains("functions/count.sql"))
        #expect(before.standardOutput.hasSuffix("2 to apply: run `orcastra migrate --migrations \(directory.path)` with the same --database-url.\n"), "\(before.output)")
        #expect(before.standardError.isEmpty, "\(before.output)")

        let migrate = try await orcastra.run(["migrate", "--migrations", directory.path, "--database-url", url])
        #expect(migrate.status == 0, "\(migrate.output)")
        let upToDate = try await orcastra.run(["migrate", "status", "--migrations", directory.path, "--database-url", url])
        #expect(upToDate.status == 0, "\(upToDate.output)")
        #expect(upToDate.standardOutput.hasSuffix("Up to date.\n"), "\(upToDate.output)")

        // An edited repeatable file and a new one would be applied: pending, like a new migration.
        try write(["functions/count.sql": Self.files["functions/count.sql"]! + "\n-- counts every note",
                   "functions/zz_more.sql": "CREATE OR REPLACE FUNCTION more() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;",
                   "0002_tags.sql": "CREATE TABLE tags (id int);"], into: directory)
        let changed = try await orcastra.run(["migrate", "status", "--migrations", directory.path, "--database-url", url, "--json"])
        #expect(changed.status == 5, "\(changed.output)")
        let entries = try statusJSON(changed.standardOutput)
        let states = Dictionary(uniqueKeysWithValues: entries.map { ($0["file"] as? String ?? "", $0["state"] as? String ?? "") })
        #expect(states == ["0001_notes.sql": "applied", "0002_tags.sql": "pending",
                           "functions/count.sql": "changed", "functions/zz_more.sql": "new"])
        #expect(entries.first?["version"] as? Int == 1)
        #expect(entries.first?["kind"] as? String == "numbered")
        #expect(entries.first?["applied_at"] is String)
        let text = try await orcastra.run(["migrate", "status", "--migrations", directory.path, "--database-url", url])
        #expect(text.standardOutput.contains("changed since applied"), "\(text.output)")
        #expect(text.standardOutput.contains("3 to apply"), "\(text.output)")
    }

    @Test func anEditedAppliedMigrationIsNamedByStatusAndRefusedByMigrateWithSixtyFive() async throws {
        let url = try await TestDatabases.shared.makeEmptyDatabase()
        let directory = try folder(Self.files)
        defer { try? FileManager.default.removeItem(at: directory) }
        let migrate = try await orcastra.run(["migrate", "--migrations", directory.path, "--database-url", url])
        #expect(migrate.status == 0, "\(migrate.output)")
        try write(["0001_notes.sql": "CREATE TABLE notes (id bigint);"], into: directory)

        let status = try await orcastra.run(["migrate", "status", "--migrations", directory.path, "--database-url", url])
        #expect(status.status == 65, "\(status.output)")
        #expect(status.standardOutput.contains("0001_notes.sql"), "\(status.output)")
        #expect(status.standardOutput.contains("edited since applied"), "\(status.output)")
        #expect(status.standardError.hasPrefix("error: Migration 0001_notes.sql was edited after it was applied"), "\(status.output)")
        #expect(status.standardError.contains("restore the file and put the change in a new migration"), "\(status.output)")

        let json = try await orcastra.run(["migrate", "status", "--migrations", directory.path, "--database-url", url, "--json"])
        #expect(json.status == 65, "\(json.output)")
        let edited = try statusJSON(json.standardOutput).first { $0["file"] as? String == "0001_notes.sql" }
        #expect(edited?["state"] as? String == "edited")

        let refused = try await orcastra.run(["migrate", "--migrations", directory.path, "--database-url", url])
        #expect(refused.status == 65, "\(refused.output)")
        #expect(refused.standardError.hasPrefix("error: Migration 0001_notes.sql was edited after it was applied"), "\(refused.output)")
    }

    @Test(arguments: [["migrate"], ["migrate", "--dry-run"], ["migrate", "status"], ["migrate", "status", "--json"]])
    func aMissingOrWrongMigrationsFolderIsOneLineNamingIt(command: [String]) async throws {
        let file = try folder(["0001_a.sql": "SELECT 1;"]).appendingPathComponent("0001_a.sql").path
        defer { try? FileManager.default.removeItem(atPath: (file as NSString).deletingLastPathComponent) }
        let missing = try await orcastra.run(command + ["--migrations", "/nonexistent/migrations", "--database-url", unreachable])
        #expect(missing.status == 66, "\(missing.output)")
        #expect(missing.standardOutput.isEmpty, "\(missing.output)")
        #expect(missing.standardError == "error: --migrations /nonexistent/migrations does not exist: give the folder that holds the migrations (NNNN_name.sql files, and repeatable ones in functions/), like Orcastra's Migrations/.\n")

        let notAFolder = try await orcastra.run(command + ["--migrations", file, "--database-url", unreachable])
        #expect(notAFolder.status == 66, "\(notAFolder.output)")
        #expect(notAFolder.standardError == "error: --migrations \(file) is a file, not a folder: give the folder that holds the migrations (NNNN_name.sql files, and repeatable ones in functions/), like Orcastra's Migrations/.\n")

        let empty = try folder(["notes.txt": "no SQL here"])
        defer { try? FileManager.default.removeItem(at: empty) }
        let noMigrations = try await orcastra.run(command + ["--migrations", empty.path, "--database-url", unreachable])
        #expect(noMigrations.status == 66, "\(noMigrations.output)")
        #expect(noMigrations.standardError == "error: --migrations \(empty.path) holds no .sql files: give the folder that holds the migrations (NNNN_name.sql files, and repeatable ones in functions/), like Orcastra's Migrations/.\n")
    }

    @Test func unreadableMigrationFilesAreNamedWithoutAFoundationDump() async throws {
        let directory = try folder(["0001_a.sql": "SELECT 1;"])
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data([0x53, 0x45, 0xff, 0xfe]).write(to: directory.appendingPathComponent("0002_binary.sql"))
        for command in [["migrate"], ["migrate", "status"]] {
            let result = try await orcastra.run(command + ["--migrations", directory.path, "--database-url", unreachable])
            #expect(result.status == 65, "\(result.output)")
            #expect(result.standardError == "error: \(directory.path)/0002_binary.sql is not UTF-8 text: save it as UTF-8.\n", "\(result.output)")
        }
        try FileManager.default.removeItem(at: directory.appendingPathComponent("0002_binary.sql"))
        try write(["7_misnamed.sql": "SELECT 1;"], into: directory)
        let misnamed = try await orcastra.run(["migrate", "status", "--migrations", directory.path, "--database-url", unreachable])
        #expect(misnamed.status == 65, "\(misnamed.output)")
        #expect(misnamed.standardError.hasPrefix("error: Migration file 7_misnamed.sql is misnamed"), "\(misnamed.output)")
    }
}
