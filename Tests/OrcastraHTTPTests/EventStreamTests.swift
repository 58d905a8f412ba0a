import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import OrcastraTesting
import Testing

/// `GET /v1/tasks/{id}/events` with `Accept: text/event-stream`: live, in order, resumable, and it ends.
@Suite(.serialized, .timeLimit(.minutes(5))) struct EventStreamTests {
    static let linear = """
        namespace: apisse
        name: four
        version: 1.0.0
        steps:
          - {name: a, command: [sh, -c, "sleep 0.3; echo '{}'"]}
          - {name: b, depends_on: [a], command: [sh, -c, "sleep 0.3; echo '{}'"]}
          - {name: c, depends_on: [b], command: [sh, -c, "sleep 0.3; echo '{}'"]}
          - {name: d, depends_on: [c], command: [sh, -c, "sleep 0.3; echo '{}'"]}
        """

    /// (id, event, data) of each event of a stream.
    static func parse(_ text: String) -> [(id: Int?, event: String, data: String)] {
        text.components(separatedBy: "\n\n").compactMap { block in
            guard !block.isEmpty else { return nil }
            var id: Int?, event = "message", data = ""
            for line in block.split(separator: "\n") {
                if line.hasPrefix("id: ") { id = Int(line.dropFirst(4)) }
                if line.hasPrefix("event: ") { event = String(line.dropFirst(7)) }
                if line.hasPrefix("data: ") { data = String(line.dropFirst(6)) }
            }
            return (id, event, data)
        }
    }

    @Test("the stream of a running 4-step task delivers every transition in order, ends, and resumes", .timeLimit(.minutes(5)))
    func liveStream() async throws {
        let api = try await APIFixture()
        defer { Task { await api.shutdown() } }
        let admin = try await api.admin()
        var (status, _, body) = try await api.object("POST", "/v1/templates", token: admin, body: Data(Self.linear.utf8),
                                                     contentType: "application/yaml")
        #expect(status == 201, "\(body)")
        (status, _, body) = try await api.object("POST", "/v1/tasks", token: admin, json: #"{"template": "apisse/four"}"#)
        let id = try #require(body["id"] as? String, "\(body)")

        // The stream opens before any worker runs: everything after the first events arrives live.
        let started = ContinuousClock.now
        async let streamed = api.request("GET", "/v1/tasks/\(id)/events", token: admin, headers: ["Accept": "text/event-stream"])
        try await Task.sleep(for: .milliseconds(500))
        try api.cluster.worker(namespace: "apisse")
        let (streamStatus, headers, data) = try await streamed
        let elapsed = ContinuousClock.now - started
        #expect(streamStatus == 200 && headers["content-type"]?.hasPrefix("text/event-stream") == true, "\(headers)")
        let events = Self.parse(String(decoding: data, as: UTF8.self))
        let transitions = events.filter { $0.event == "transition" }
        // Ids 1…n without gaps, then one end event saying how the task finished.
        #expect(transitions.map(\.id) == Array(1...transitions.count).map { Optional($0) }, "\(events)")
        #expect(events.last?.event == "end" && events.last?.data.contains("complete") == true, "\(events)")
        #expect(elapsed >= .seconds(1), "the stream ended before the steps could have run")

        // The same transitions as the JSON listing, in the same order.
        let (_, _, listing) = try await api.object("GET", "/v1/tasks/\(id)/events", token: admin)
        let expected = (listing["events"] as? [[String: Any]] ?? []).map { "\($0["step_name"] as? String ?? "task") \($0["to"] as? String ?? "")" }
        let got = transitions.map { event -> String in
            let object = (try? JSONSerialization.jsonObject(with: Data(event.data.utf8))) as? [String: Any] ?? [:]
            return "\(object["step_name"] as? String ?? "task") \(object["to"] as? String ?? "")"
        }
        #expect(got == expected && got.count >= 13, "\(got)")
        #expect(got.contains("d complete") && got.last == "task complete", "\(got)")

        // Resuming after event 5 gives 6…n exactly, then the end.
        let (_, _, resumed) = try await api.request("GET", "/v1/tasks/\(id)/events", token: admin,
                                                    headers: ["Accept": "text/event-stream", "Last-Event-ID": "5"])
        let again = Self.parse(String(decoding: resumed, as: UTF8.self))
        #expect(again.filter { $0.event == "transition" }.map(\.id) == Array(6...transitions.count).map { Optional($0) }, "\(again)")
        #expect(again.filter { $0.event == "transition" }.map(\.data) == Array(transitions.dropFirst(5).map(\.data)))
        #expect(again.last?.event == "end")

        // An unknown task is a 404 problem, not an empty stream.
        (status, _, body) = try await api.object("GET", "/v1/tasks/\(UUID().uuidString.lowercased())/events", token: admin,
                                                 headers: ["Accept": "text/event-stream"])
        #expect(status == 404 && (body["type"] as? String)?.hasSuffix("unknown-task") == true, "\(body)")
    }
}
