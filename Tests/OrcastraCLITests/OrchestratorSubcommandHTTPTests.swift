import Foundation
import OrcastraDevDB
import OrcastraTesting
import Testing

/// `orcastra orchestrator` does not link the HTTP server: only `orcastra-orchestrator` serves the
/// API. An HTTP setting given to it — flag, `ORCASTRA_HTTP_ADDRESS` or orcastra.yaml — used to be
/// "Unknown option" (the flag) or silently ignored (the variable and the file: the orchestrator ran
/// and no port was opened). Now each is refused before anything connects, naming where it came from
/// and the executable that serves it. (`--database-url 'not a url'` makes a start that gets past
/// the options fail at once, so that the old behaviour fails the test instead of running.)
@Suite(.timeLimit(.minutes(5))) struct OrchestratorSubcommandHTTPTests {
    let orcastra = CommandLineTool("orcastra")
    let unusable = ["--database-url", "not a url"]

    func expectRefused(_ outcome: ProcessRunner.Outcome, naming origin: String) {
        #expect(outcome.status == 64, "\(outcome.output)")
        #expect(outcome.standardError.contains("`orcastra orchestrator` does not serve the HTTP API"), "\(outcome.output)")
        #expect(outcome.standardError.contains(origin), "\(outcome.output)")
        #expect(outcome.standardError.contains("run `orcastra-orchestrator"), "\(outcome.output)")
        #expect(!outcome.standardError.contains("not a PostgreSQL connection string"), "refused before the database: \(outcome.output)")
    }

    @Test func flagIsRefusedWithTheExecutableThatServesIt() async throws {
        let outcome = try await orcastra.run(["orchestrator", "--http-address", "127.0.0.1:8080"] + unusable,
                                             environment: ["ORCASTRA_CONFIG": ""])
        expectRefused(outcome, naming: "--http-address")
    }

    @Test func variableIsRefusedNotIgnored() async throws {
        let outcome = try await orcastra.run(["orchestrator"] + unusable,
                                             environment: ["ORCASTRA_HTTP_ADDRESS": "127.0.0.1:8080", "ORCASTRA_CONFIG": ""])
        expectRefused(outcome, naming: "ORCASTRA_HTTP_ADDRESS")
    }

    @Test func fileKeyIsRefusedNotIgnored() async throws {
        let folder = NSTemporaryDirectory() + "orchestrator-http-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/orcastra.yaml"
        try "orchestrator:\n  tls-cert: /srv/cert.pem\n  tls-key: /srv/key.pem\n  http-address: 127.0.0.1:8080\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let outcome = try await orcastra.run(["orchestrator", "--config", file] + unusable)
        expectRefused(outcome, naming: "\(file):4 (orchestrator.http-address)")
    }

    /// Without any HTTP setting it starts as before (here: as far as the unusable database URL).
    @Test func withoutHTTPSettingsItStartsAsBefore() async throws {
        let outcome = try await orcastra.run(["orchestrator"] + unusable, environment: ["ORCASTRA_CONFIG": ""])
        #expect(outcome.status == 64, "\(outcome.output)")
        #expect(outcome.standardError.contains("not a PostgreSQL connection string"), "\(outcome.output)")
    }
}
