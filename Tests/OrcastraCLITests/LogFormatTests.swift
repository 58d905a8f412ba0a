import Foundation
import OrcastraPostgres
import OrcastraTesting
import Testing

/// `--log-format json` and ORCASTRA_LOG_FORMAT on the real worker and orchestrator.
@Suite(.timeLimit(.minutes(6))) struct LogFormatTests {
    @Test func jsonLogsAreOneObjectPerLineWithEveryMetadataKey() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register("""
            namespace: e2e
            name: noisy
            version: 1.0.0
            steps:
              - {name: fail, command: [sh, -c, "printf 'first line\\\\nsecond \\"line\\"\\\\n' >&2; exit 3"], retry: {max_attempts: 1}}
            """)
        let worker = try cluster.worker(namespace: "e2e", ["--log-format", "json"])
        let orchestrator = try cluster.orchestrator(["--poll-interval", "200ms", "--log-format", "json"])
        let task = try await cluster.submit("e2e/noisy")
        #expect(try await cluster.settled(task) == "error", "\(cluster.logs)")
        #expect(await waitUntil(within: .seconds(5)) { worker.log.contains("step attempt failed") }, "\(worker.log)")
        // The task can settle before the orchestrator has written its first record.
        #expect(await waitUntil(within: .seconds(10)) { orchestrator.log.contains("orchestrator started") }, "\(orchestrator.log)")

        var failure: [String: Any]?
        for process in [worker, orchestrator] {
            let lines = process.log.split(separator: "\n", omittingEmptySubsequences: true)
            #expect(!lines.isEmpty)
            for line in lines {
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object != nil, "not one JSON object: \(line)")
                guard let object else { continue }
                for key in ["time", "level", "message", "logger"] { #expect(object[key] is String, "\(key) missing: \(line)") }
                #expect((object["time"] as? String).flatMap { try? Date($0, strategy: .iso8601) } != nil
                        || (object["time"] as? String)?.hasSuffix("Z") == true, "\(line)")
                if object["message"] as? String == "step attempt failed" { failure = object }
            }
        }
        let record = try #require(failure, "\(worker.log)")
        #expect(record["level"] as? String == "error")
        #expect(record["task"] as? String == task.uuidString.lowercased())
        #expect(record["step"] as? String == "fail")
        #expect(record["attempt"] as? String == "1")
        #expect(record["namespace"] as? String == "e2e")
        #expect((record["worker"] as? String)?.isEmpty == false)
        // The command's two stderr lines stay in one record, line break and quotes intact.
        #expect((record["error"] as? String)?.contains("first line\nsecond \"line\"") == true, "\(record)")
    }

    @Test func anUnknownFormatIsRefusedNamingTheFlagOrTheVariable() async throws {
        let flag = try await CommandLineTool("orcastra-worker").run(["--namespace", "e2e", "--log-format", "xml"])
        #expect(flag.status != 0)
        #expect(flag.output.contains("--log-format"), "\(flag.output)")
        let variable = try await CommandLineTool("orcastra-orchestrator").run([], environment: ["ORCASTRA_LOG_FORMAT": "yaml"])
        #expect(variable.status != 0)
        #expect(variable.output.contains("ORCASTRA_LOG_FORMAT: The value 'yaml' is invalid for '--log-format <log-format>'"), "\(variable.output)")
        let address = try await CommandLineTool("orcastra-worker").run(["--namespace", "e2e", "--metrics-address", "nowhere"])
        #expect(address.status != 0)
        #expect(address.output.contains("--metrics-address: 'nowhere' is not an address to listen on"), "\(address.output)")
    }
}
