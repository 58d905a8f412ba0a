import Foundation
import OrcastraTesting
import Testing

/// The built `orcastra` binary against a real database: output and exit codes.
@Suite(.timeLimit(.minutes(5))) struct CLITests {
    let orcastra = CommandLineTool("orcastra")

    var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    @Test func migrateIsIdempotentAndStatusListsFiles() async throws {
        let url = try await TestDatabases.shared.makeEmptyDatabase()
        let first = try await orcastra.run(["migrate", "--database-url", url])
        #expect(first.status == 0, "\(first.output)")
        #expect(first.standardOutput.contains("Applying 0001_core_schema.sql"))
        let second = try await orcastra.run(["migrate"], environment: ["ORCASTRA_DATABASE_URL": url])
        #expect(second.standardOutput.contains("Nothing to apply"))
        let status = try await orcastra.run(["migrate", "status", "--database-url", url])
        #expect(status.standardOutput.contains("0001_core_schema.sql"))
        #expect(status.standardOutput.contains("Up to date."))
    }

    @Test func templatesRegisterListAndShow() async throws {
        let url = try await TestDatabases.shared.makeDatabase()
        let templates = repositoryRoot.appendingPathComponent("Templates").path
        let register = try await orcastra.run(["template", "register", templates, "--database-url", url])
        #expect(register.status == 0, "\(register.output)")
        #expect(register.standardOutput.contains("registered  examples/diamond@1.0.0"))
        let again = try await orcastra.run(["template", "register", templates, "--database-url", url])
        #expect(again.standardOutput.contains("unchanged   examples/diamond@1.0.0"))
        let list = try await orcastra.run(["template", "list", "--json", "--database-url", url])
        let listed = try JSONSerialization.jsonObject(with: Data(list.standardOutput.utf8)) as? [[String: Any]]
        #expect(listed?.compactMap { $0["name"] as? String }.sorted() == ["diamond", "etl", "linear"])
        let show = try await orcastra.run(["template", "show", "examples/diamond", "--database-url", url])
        #expect(show.standardOutput.contains("join   ← left, right"), "\(show.output)")
        let unknown = try await orcastra.run(["template", "show", "examples/diamnd", "--database-url", url])
        #expect(unknown.status == 66)
        #expect(unknown.standardError == "error: No template examples/diamnd is registered. Did you mean examples/diamond?\n")
    }

    @Test func invalidTemplateExitsWithLocations() async throws {
        let bad = repositoryRoot.appendingPathComponent("Tests/OrcastraTemplatesTests/Fixtures/bad/cycle.yaml").path
        let result = try await orcastra.run(["template", "validate", bad])
        #expect(result.status == 65)
        #expect(result.standardError.contains("cycle.yaml:"))
        #expect(result.standardError.contains("→"))
    }

    @Test func unreachableDatabaseNamesTheAddress() async throws {
        let result = try await orcastra.run(["template", "list", "--database-url", "postgresql://ops@127.0.0.1:1/prod?connect_timeout=2"])
        #expect(result.status == 69)
        #expect(result.standardError.hasPrefix("error: Could not connect to PostgreSQL at ops@127.0.0.1:1/prod"))
    }

    @Test func unmigratedDatabaseSaysToMigrate() async throws {
        let url = try await TestDatabases.shared.makeEmptyDatabase()
        let result = try await orcastra.run(["template", "list", "--database-url", url])
        #expect(result.status == 69)
        #expect(result.standardError.contains("Run `orcastra migrate` first."), "\(result.output)")
    }

    @Test func badUsageGetsTheParsersCode() async throws {
        let result = try await orcastra.run(["template", "show"])
        #expect(result.status == 64)
        #expect(result.standardError.contains("Missing expected argument"))
    }
}

/// The README's first quick-start command, as a new user runs it: no database configured.
/// It starts its own PostgreSQL, orchestrator and worker, so it takes the `ProcessGate` like a
/// `ProcessCluster` does.
@Suite(.timeLimit(.minutes(5))) struct DemoTests {
    @Test func demoRunsTheExampleWorkflowEndToEnd() async throws {
        let result = try await ProcessGate.shared.withGate {
            try await CommandLineTool("orcastra").run(["demo"], environment: ["ORCASTRA_DATABASE_URL": ""])
        }
        #expect(result.status == 0, "\(result.output)")
        #expect(result.standardOutput.contains("Starting a throwaway PostgreSQL"))
        #expect(result.standardOutput.contains("load         complete"), "\(result.output)")
        #expect(result.standardOutput.contains("Task complete in"))
        #expect(result.standardOutput.contains(#""summary": "2 regions, 242.75 EUR""#), "\(result.output)")
        #expect(result.standardOutput.contains("Stopped the worker, the orchestrator and the database."))
    }
}
