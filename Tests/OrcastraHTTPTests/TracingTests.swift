import Foundation
import OrcastraPostgres
import OrcastraTesting
import Testing

/// Distributed tracing (docs/tracing.md) across real processes: a task submitted over the HTTP API
/// with a caller's `traceparent`, run by a separate orchestrator and worker that export spans over
/// OTLP/HTTP to a receiver in the test.
@Suite(.serialized, .timeLimit(.minutes(5))) struct TracingTests {
    /// Four steps in a line; `b` fails its first attempt, `c` reports the TRACEPARENT it was given.
    static let traced = """
        namespace: traced
        name: four
        version: 1.0.0
        steps:
          - {name: a, command: [sh, -c, "echo '{}'"]}
          - name: b
            depends_on: [a]
            retry: {max_attempts: 2, backoff: fixed, initial_delay: 100ms, jitter: false}
            command: [sh, -c, 'if [ "$ORCASTRA_ATTEMPT" = 1 ]; then echo "flaky dependency refused" >&2; exit 1; fi; echo "{}"']
          - {name: c, depends_on: [b], command: [sh, -c, 'printf "{\\"traceparent\\": \\"%s\\"}" "$TRACEPARENT"']}
          - {name: d, depends_on: [c], command: [sh, -c, "echo '{}'"]}
        """

    static let callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let callerSpan = "00f067aa0ba902b7"
    static var callerTraceparent: String { "00-\(callerTrace)-\(callerSpan)-01" }

    /// Submits the task over the API with the caller's traceparent; returns its id once it is complete.
    static func runTask(_ api: APIFixture) async throws -> UUID {
        let admin = try await api.admin()
        var (status, _, body) = try await api.object("POST", "/v1/templates", token: admin, body: Data(Self.traced.utf8),
                                                     contentType: "application/yaml")
        #expect(status == 201, "\(body)")
        (status, _, body) = try await api.object("POST", "/v1/tasks", token: admin, json: #"{"template": "traced/four"}"#,
                                                 headers: ["traceparent": Self.callerTraceparent])
        #expect(status == 201, "\(body)")
        let id = try #require(body["id"] as? String)
        let task = try #require(UUID(uuidString: id))
        let state = try await api.cluster.settled(task, within: .seconds(60))
        #expect(state == "complete", "\(api.cluster.logs)")
        return task
    }

    @Test("a 4-step task run by separate orchestrator and worker processes is one trace: a span per attempt under the API's span, the retry a sibling with its error, TRACEPARENT in the command",
          .timeLimit(.minutes(5)))
    func oneTraceAcrossProcesses() async throws {
        let receiver = try OTLPReceiver()
        try await receiver.start()
        defer { receiver.stop() }
        let otel = ["OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
                    "OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_TRACES_SAMPLER": "parentbased_always_on"]
        let api = try await APIFixture(environment: otel)
        defer { Task { await api.shutdown() } }
        try api.cluster.worker(namespace: "traced", environment: otel)

        let task = try await Self.runTask(api)
        let ours = { receiver.received.filter { $0.traceID == Self.callerTrace } }
        let arrived = await waitUntil(within: .seconds(30)) {
            ours().filter { $0.service == "orcastra-worker" }.count >= 5 && ours().contains { $0.service == "orcastra-orchestrator" }
        }
        #expect(arrived, "spans received: \(receiver.received)\n\(api.cluster.logs)")
        let spans = ours()

        // The API's request span: a child of the caller's span, in the orchestrator process.
        let submit = try #require(spans.first { $0.service == "orcastra-orchestrator" && $0.attributes["http.request.method"] == "POST" })
        #expect(submit.parentSpanID == Self.callerSpan)
        #expect(submit.kind == 2)
        let stored = try await api.cluster.pool.queryRowAny("SELECT traceparent FROM orcastra.tasks WHERE id = \(task)")
        #expect(try stored.decode("traceparent", as: String.self) == "00-\(Self.callerTrace)-\(submit.spanID)-01")

        // One span per attempt, all in the worker process, all children of the task's span.
        let steps = spans.filter { $0.service == "orcastra-worker" }
        #expect(steps.map(\.name).sorted() == ["step a", "step b", "step b", "step c", "step d"], "\(steps)")
        for span in steps {
            #expect(span.parentSpanID == submit.spanID, "\(span)")
            #expect(span.attributes["orcastra.task.id"] == task.uuidString.lowercased())
            #expect(span.attributes["orcastra.namespace"] == "traced")
            #expect(span.kind == 5)
        }
        #expect(Set(steps.map(\.spanID)).count == 5)

        // The retry: a sibling of the failed attempt, which carries the step's error.
        let attempts = steps.filter { $0.name == "step b" }.sorted { ($0.attributes["orcastra.step.attempt"] ?? "") < ($1.attributes["orcastra.step.attempt"] ?? "") }
        #expect(attempts.map { $0.attributes["orcastra.step.attempt"] } == ["1", "2"])
        let failed = attempts[0]
        #expect(failed.statusCode == 2)
        #expect(failed.statusMessage.contains("flaky dependency refused"), "\(failed)")
        #expect(failed.attributes["orcastra.step.outcome"] == "waiting_for_retry")
        #expect(failed.events.contains("exception"), "\(failed.events)")
        #expect(attempts[1].statusCode == 1)
        #expect(attempts[1].attributes["orcastra.step.outcome"] == "completed")
        for span in steps where span.name != "step b" || span.attributes["orcastra.step.attempt"] == "2" {
            #expect(span.statusCode == 1, "\(span)")
        }

        // The command step saw its own attempt's span as TRACEPARENT, so a process it starts continues the trace.
        let c = try #require(steps.first { $0.name == "step c" })
        let result = try await api.cluster.result(task, step: "c")
        #expect(result == .object(["traceparent": .string("00-\(Self.callerTrace)-\(c.spanID)-01")]))

        // The worker's log lines about the attempt carry its trace_id and span_id.
        let logs = api.cluster.logs
        #expect(logs.contains("trace_id=\(Self.callerTrace)"), "\(logs)")
        #expect(logs.contains("span_id=\(failed.spanID)"), "\(logs)")
    }

    @Test("with tracing off nothing is exported, and a command step gets the task's stored traceparent", .timeLimit(.minutes(5)))
    func offHandsOnTheCallersContext() async throws {
        let api = try await APIFixture()
        defer { Task { await api.shutdown() } }
        try api.cluster.worker(namespace: "traced")
        let task = try await Self.runTask(api)
        let stored = try await api.cluster.pool.queryRowAny("SELECT traceparent FROM orcastra.tasks WHERE id = \(task)")
        #expect(try stored.decode("traceparent", as: String.self) == Self.callerTraceparent)
        let result = try await api.cluster.result(task, step: "c")
        #expect(result == .object(["traceparent": .string(Self.callerTraceparent)]))
        #expect(!api.cluster.logs.contains("trace_id="))
    }
}
