import Foundation
import OrcastraDevDB
import OrcastraTesting
import Testing

/// An API that refuses the connection is said in one readable reason. It used to print NIO's
/// `IOError` description, with a stray parenthesis and a reason that contradicts itself:
/// `connection reset (error set): Connection refused) (errno: 111)`.
@Suite(.timeLimit(.minutes(5))) struct APIUnreachableMessageTests {
    @Test func refusedConnectionIsOneClearReason() async throws {
        // Nothing listens on port 1 of the loopback address: the connection is refused at once.
        let outcome = try await CommandLineTool("orcastra").run(
            ["--api-url", "http://127.0.0.1:1", "--api-token", "orc_x_y", "task", "list"], environment: ["ORCASTRA_CONFIG": ""])
        #expect(outcome.status == 69, "\(outcome.output)")
        #expect(outcome.standardError.contains("Cannot reach the Orcastra API at http://127.0.0.1:1: connection refused (errno 111)."),
                "\(outcome.output)")
        #expect(!outcome.standardError.contains("error set"), "\(outcome.output)")
    }
}
