import Foundation
import OrcastraDevDB
import OrcastraPostgres
import OrcastraTesting
import Testing

/// `orcastra roles …` as a user runs it: output, `--json` and exit codes (docs/cli.md#orcastra-roles).
@Suite(.timeLimit(.minutes(3))) struct RolesCLITests {
    let orcastra = CommandLineTool("orcastra")

    func run(_ arguments: [String], _ url: String) async throws -> ProcessRunner.Outcome {
        try await orcastra.run(arguments + ["--database-url", url])
    }

    func json(_ outcome: ProcessRunner.Outcome) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(outcome.standardOutput.utf8))) as? [String: Any] ?? [:]
    }

    @Test func setupGrantShowAndRevoke() async throws {
        let url = try await TestDatabases.shared.makeDatabase()
        let login = "cli_worker_\(UInt32.random(in: 0..<UInt32.max))"
        let admin = try await PostgresConnection.connect(url)
        try await admin.executeSimple("CREATE ROLE \(login) LOGIN")
        TestDatabases.dropAtExit(role: login, server: url)

        // Before setup a grant is refused with what to do.
        let early = try await run(["roles", "grant-worker", login, "--namespace", "billing"], url)
        #expect(early.status == 75 && early.standardError.contains("orcastra roles setup"), "\(early.output)")

        let setup = try await run(["roles", "setup", "--json"], url)
        #expect(setup.status == 0, "\(setup.output)")
        let names = Set((json(setup)["created"] as? [String] ?? []) + (json(setup)["existing"] as? [String] ?? []))
        #expect(names == ["orcastra_admin", "orcastra_worker", "orcastra_submitter", "orcastra_reader", "orcastra_orchestrator"])
        let twice = try await run(["roles", "setup"], url)
        #expect(twice.status == 0 && twice.standardOutput.contains("Already in the cluster"), "\(twice.output)")

        let granted = try await run(["roles", "grant-worker", login, "--namespace", "billing", "--namespace", "shipping", "--json"], url)
        #expect(granted.status == 0, "\(granted.output)")
        #expect(json(granted)["granted"] as? [String] == ["billing", "shipping"])
        let again = try await run(["roles", "grant-worker", login, "--namespace", "billing"], url)
        #expect(again.status == 0 && again.standardOutput.contains("already granted: billing"), "\(again.output)")

        let shown = try await run(["roles", "show", "--json"], url)
        let grants = (json(shown)["grants"] as? [[String: Any]] ?? []).filter { $0["role"] as? String == login }
        #expect(grants.compactMap { $0["namespace"] as? String } == ["billing", "shipping"], "\(shown.output)")
        #expect(json(shown)["set_up"] as? Bool == true)

        // Refusals, each with its exit code.
        let unknown = try await run(["roles", "grant-worker", "no_such_login_\(UInt32.random(in: 0..<UInt32.max))", "--namespace", "billing"], url)
        #expect(unknown.status == 66 && unknown.standardError.contains("CREATE ROLE"), "\(unknown.output)")
        let bad = try await run(["roles", "grant-worker", login, "--namespace", "Bad Name"], url)
        #expect(bad.status == 64, "\(bad.output)")
        let asWorker = TestDatabases.conninfo(url, as: login)
        let migrate = try await run(["migrate"], asWorker)
        #expect(migrate.status == 77 && migrate.standardError.contains("docs/security.md"), "\(migrate.output)")
        let list = try await run(["task", "list"], asWorker)
        #expect(list.status == 77, "\(list.output)")
        let selfSetup = try await run(["roles", "setup"], asWorker)
        #expect(selfSetup.status == 77, "\(selfSetup.output)")

        let revoked = try await run(["roles", "revoke-worker", login, "--json"], url)
        #expect(revoked.status == 0 && json(revoked)["revoked"] as? [String] == ["billing", "shipping"], "\(revoked.output)")
        #expect(try await admin.queryRow("SELECT pg_has_role(\(login), 'orcastra_worker', 'MEMBER') AS member").decode("member", as: Bool.self) == false)
        await admin.close()
    }
}
