import Foundation
import OrcastraTesting
import Testing

/// A `--database-url` (or `ORCASTRA_DATABASE_URL`) libpq cannot read stops the long-running
/// executables as bad usage (exit 64, like `orcastra` and like a malformed --listen-database-url),
/// naming where the string came from; it used to end with exit 1, the code of a failure at run time.
@Suite(.timeLimit(.minutes(5))) struct MalformedDatabaseURLTests {
    @Test(arguments: [["orcastra-worker", "--namespace", "x"], ["orcastra-orchestrator"]])
    func malformedFlagIsBadUsage(command: [String]) async throws {
        let outcome = try await CommandLineTool(command[0]).run(Array(command.dropFirst()) + ["--database-url", "not a url"])
        #expect(outcome.status == 64, "\(outcome.output)")
        #expect(outcome.standardError.contains("--database-url is not a PostgreSQL connection string"), "\(outcome.output)")
    }

    @Test(arguments: [["orcastra-worker", "--namespace", "x"], ["orcastra-orchestrator"]])
    func malformedVariableIsBadUsage(command: [String]) async throws {
        let outcome = try await CommandLineTool(command[0]).run(Array(command.dropFirst()),
                                                              environment: ["ORCASTRA_DATABASE_URL": "not a url"])
        #expect(outcome.status == 64, "\(outcome.output)")
        #expect(outcome.standardError.contains("ORCASTRA_DATABASE_URL"), "\(outcome.output)")
        #expect(outcome.standardError.contains("is not a PostgreSQL connection string"), "\(outcome.output)")
    }
}
