import Foundation
import OrcastraPostgres
import OrcastraTesting
import Testing

/// `submit --traceparent` and `TRACEPARENT` through the built binary (docs/tracing.md).
@Suite(.timeLimit(.minutes(5))) struct TraceparentCLITests {
    let cli = TaskCLITests()
    static let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    static let inherited = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    func stored(_ output: String, _ pool: PostgresPool) async throws -> String? {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], "\(output)")
        let id = try #require(object["task_id"] as? String)
        return try await pool.queryRowAny("SELECT traceparent FROM orcastra.tasks WHERE id = \(id)::uuid").decode("traceparent", as: String?.self)
    }

    @Test func theFlagThenTheEnvironmentThenANewTrace() async throws {
        let (url, pool) = try await cli.database()
        defer { Task { await pool.shutdown() } }
        let flagged = try await cli.orcastra.run(["submit", "shop/single", "--traceparent", Self.given, "--json", "--database-url", url],
                                                 environment: ["TRACEPARENT": Self.inherited])
        #expect(flagged.status == 0, "\(flagged.output)")
        #expect(try await stored(flagged.standardOutput, pool) == Self.given)
        let id = try #require((try JSONSerialization.jsonObject(with: Data(flagged.standardOutput.utf8)) as? [String: Any])?["task_id"] as? String)
        let show = try await cli.orcastra.run(["task", "show", id, "--database-url", url])
        #expect(show.standardOutput.contains("Trace     4bf92f3577b34da6a3ce929d0e0e4736"), "\(show.output)")
        let json = try await cli.orcastra.run(["task", "show", id, "--json", "--database-url", url])
        #expect(json.standardOutput.contains(#""traceparent" : "\#(Self.given)""#) || json.standardOutput.contains(#""traceparent":"\#(Self.given)""#),
                "\(json.output)")

        let fromEnvironment = try await cli.orcastra.run(["submit", "shop/single", "--json", "--database-url", url],
                                                         environment: ["TRACEPARENT": Self.inherited])
        #expect(try await stored(fromEnvironment.standardOutput, pool) == Self.inherited)

        // An unusable TRACEPARENT is ignored, as W3C asks of a receiver: a new trace.
        let unusable = try await cli.orcastra.run(["submit", "shop/single", "--json", "--database-url", url],
                                                  environment: ["TRACEPARENT": "garbage"])
        #expect(unusable.status == 0, "\(unusable.output)")
        let fresh = try #require(try await stored(unusable.standardOutput, pool))
        #expect(fresh.hasPrefix("00-") && fresh.count == 55 && fresh != Self.given && fresh != Self.inherited)
    }

    @Test func aMalformedFlagIsRefusedBeforeAnythingIsSent() async throws {
        let (url, pool) = try await cli.database()
        defer { Task { await pool.shutdown() } }
        let refused = try await cli.orcastra.run(["submit", "shop/single", "--traceparent", "00-abc-01", "--database-url", url])
        #expect(refused.status == 64, "\(refused.output)")
        #expect(refused.standardError.contains("--traceparent '00-abc-01' is not a W3C trace context"), "\(refused.output)")
        #expect(try await pool.query("SELECT count(*) AS n FROM orcastra.tasks").first!.decode("n", as: Int.self) == 0)
    }
}
