import Foundation
import OrcastraDevDB
import OrcastraTesting
import Testing

/// `orcastra config show` with no database-url used to print `database-url  -  unset` and stop
/// there, although every command then connects somewhere: with libpq's PG* variables, else the
/// development database it starts itself (docs/cli.md, "Where the database is"). It now says which.
@Suite(.timeLimit(.minutes(5))) struct ConfigShowDatabaseTests {
    let orcastra = CommandLineTool("orcastra")

    @Test func unsetDatabaseNamesTheDevelopmentDatabase() async throws {
        let folder = NSTemporaryDirectory() + "config-show-devdb-\(UUID().uuidString.prefix(8))"
        let run = try await orcastra.run(["config", "show", "--for", "cli"],
                                         environment: ["ORCASTRA_DEV_DB_DIR": folder, "ORCASTRA_CONFIG": "", "ORCASTRA_DATABASE_URL": ""])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.standardOutput.contains("database-url  -  unset"), "\(run.output)")
        #expect(run.standardOutput.contains("Without database-url, commands use the local development database in \(folder)"), "\(run.output)")
        #expect(!FileManager.default.fileExists(atPath: folder), "showing the configuration starts no database")
    }

    @Test func unsetDatabaseWithLibpqVariablesNamesThem() async throws {
        let run = try await orcastra.run(["config", "show", "--for", "worker"],
                                         environment: ["PGHOST": "db.internal", "ORCASTRA_CONFIG": "", "ORCASTRA_DATABASE_URL": ""])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.standardOutput.contains("Without database-url, commands connect with libpq's own variables (PGHOST)."), "\(run.output)")
    }

    @Test func aGivenDatabaseNeedsNoNote() async throws {
        let run = try await orcastra.run(["config", "show", "--for", "cli"],
                                         environment: ["ORCASTRA_DATABASE_URL": "postgresql://app@db/orcastra", "ORCASTRA_CONFIG": ""])
        #expect(run.status == 0, "\(run.output)")
        #expect(!run.standardOutput.contains("Without database-url"), "\(run.output)")
    }
}
