import Foundation
import OrcastraTesting
import Testing

/// `--listen-database-url` (and `ORCASTRA_LISTEN_DATABASE_URL`) are read as connection strings
/// before anything connects: a malformed one stops the process with a message naming where it came
/// from (the flag as a usage error, exit 64).
@Suite(.timeLimit(.minutes(5))) struct ListenDatabaseURLTests {
    /// An address nothing listens at: the process must stop on the bad listen URL before connecting.
    static let unreachable = ["ORCASTRA_DATABASE_URL": "host=/nonexistent-orcastra-socket dbname=none connect_timeout=1"]

    @Test(arguments: [["orcastra-worker", "--namespace", "x"], ["orcastra-orchestrator"]])
    func malformedFlagIsBadInput(command: [String]) async throws {
        let outcome = try await CommandLineTool(command[0]).run(Array(command.dropFirst()) + ["--listen-database-url", "not a url"],
                                                              environment: Self.unreachable)
        #expect(outcome.status == 64, "\(outcome.output)")
        #expect(outcome.standardError.contains("--listen-database-url is not a PostgreSQL connection string"), "\(outcome.output)")
    }

    @Test func malformedVariableStopsTheWorker() async throws {
        let outcome = try await CommandLineTool("orcastra-worker").run(["--namespace", "x"],
                                                                       environment: Self.unreachable.merging(["ORCASTRA_LISTEN_DATABASE_URL": "not a url"]) { $1 })
        #expect(outcome.status != 0, "\(outcome.output)")
        #expect(outcome.standardError.contains("ORCASTRA_LISTEN_DATABASE_URL: --listen-database-url is not a PostgreSQL connection string"), "\(outcome.output)")
    }
}
