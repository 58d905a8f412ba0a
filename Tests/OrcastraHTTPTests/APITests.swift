import Foundation
import OrcastraTesting
import Testing

/// The HTTP API against the built `orcastra-orchestrator` on a real port.
@Suite(.serialized, .timeLimit(.minutes(5))) struct APITests {
    static let failing = """
        namespace: apifail
        name: flaky
        version: 1.0.0
        steps:
          - name: fail
            command: [sh, -c, "echo 'boom' >&2; exit 3"]
            retry: {max_attempts: 1}
          - {name: after, depends_on: [fail], command: [sh, -c, "echo '{}'"]}
        """

    @Test("every endpoint's happy path", .timeLimit(.minutes(5)))
    func happyPaths() async throws {
        let api = try await APIFixture()
        defer { Task { await api.shutdown() } }
        let admin = try await api.admin()

        var (status, headers, body) = try await api.object("GET", "/healthz")
        #expect(status == 200 && body["status"] as? String == "up")
        (status, _, body) = try await api.object("GET", "/readyz")
        #expect(status == 200 && body["status"] as? String == "ready", "\(body)")

        // Templates: register (201, then 200 for the same content), list, versions, one version.
        try await api.registerOrder()
        (status, _, body) = try await api.object("POST", "/v1/templates", token: admin, body: Data(APIFixture.diamond.utf8),
                                                 contentType: "application/yaml")
        #expect(status == 200 && body["created"] as? Bool == false, "\(body)")
        (status, _, body) = try await api.object("GET", "/v1/templates", token: admin)
        let references = (body["templates"] as? [[String: Any]] ?? []).compactMap { $0["reference"] as? String }
        #expect(status == 200 && references.contains("shop/order@1.0.0"), "\(body)")
        (status, _, body) = try await api.object("GET", "/v1/templates/shop/order", token: admin)
        #expect(status == 200 && (body["templates"] as? [[String: Any]])?.count == 1, "\(body)")
        (status, _, body) = try await api.object("GET", "/v1/templates/shop/order/1.0.0", token: admin)
        let steps = body["steps"] as? [[String: Any]] ?? []
        #expect(status == 200 && (body["source"] as? String)?.contains("handler: shop.ship") == true, "\(body)")
        #expect(steps.map { $0["name"] as? String } == ["charge", "ship"] && steps[1]["depends_on"] as? [String] == ["charge"])

        // Submit: 201 with Location; the same Idempotency-Key again is 200 with the same task.
        let submit = #"{"template": "shop/order", "context": {"order_id": 12345678901234567890123, "email": "a@b.c"}, "priority": 3}"#
        (status, headers, body) = try await api.object("POST", "/v1/tasks", token: admin, json: submit, headers: ["Idempotency-Key": "order-1"])
        let id = try #require(body["id"] as? String, "\(body)")
        #expect(status == 201 && headers["location"] == "/v1/tasks/\(id)" && body["created"] as? Bool == true, "\(status) \(headers) \(body)")
        (status, headers, body) = try await api.object("POST", "/v1/tasks", token: admin, json: submit, headers: ["Idempotency-Key": "order-1"])
        #expect(status == 200 && body["id"] as? String == id && body["created"] as? Bool == false, "\(body)")

        // The task with its steps; the context keeps every digit.
        let (taskStatus, _, raw) = try await api.request("GET", "/v1/tasks/\(id)", token: admin)
        #expect(taskStatus == 200 && String(decoding: raw, as: UTF8.self).contains("12345678901234567890123"),
                "\(String(decoding: raw, as: UTF8.self))")
        body = try JSONSerialization.jsonObject(with: raw) as? [String: Any] ?? [:]
        #expect(body["priority"] as? Int == 3 && body["template"] as? String == "shop/order@1.0.0")
        #expect((body["steps"] as? [[String: Any]])?.map { $0["state"] as? String } == ["enqueued", "pending"], "\(body)")

        // A run_at in the future and a delay make pending tasks; listing pages by cursor.
        (status, _, body) = try await api.object("POST", "/v1/tasks", token: admin,
                                                 json: #"{"template": "shop/order@1.0.0", "context": {"order_id": 2}, "delay": "1h"}"#)
        #expect(status == 201, "\(body)")
        (status, _, body) = try await api.object("POST", "/v1/tasks", token: admin,
                                                 json: #"{"template": "shop/order", "context": {"order_id": 3}, "run_at": "2099-01-01T00:00:00Z"}"#)
        #expect(status == 201, "\(body)")
        let scheduled = try #require(body["id"] as? String)
        (status, _, body) = try await api.object("GET", "/v1/tasks/\(scheduled)", token: admin)
        #expect(body["state"] as? String == "pending" && (body["run_at"] as? String)?.hasPrefix("2099-01-01") == true, "\(body)")

        var seen: [String] = []
        var cursor: String? = nil
        repeat {
            let query = "/v1/tasks?namespace=shop&limit=2" + (cursor.map { "&cursor=\($0)" } ?? "")
            (status, _, body) = try await api.object("GET", query, token: admin)
            #expect(status == 200, "\(body)")
            seen += (body["tasks"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            cursor = body["next_cursor"] as? String
        } while cursor != nil && seen.count < 10
        #expect(seen.count == 3 && Set(seen).count == 3 && seen.last == id, "\(seen)")
        (status, _, body) = try await api.object("GET", "/v1/tasks?state=pending&template=order", token: admin)
        #expect((body["tasks"] as? [[String: Any]])?.count == 2, "\(body)")

        // Events, then cancel.
        (status, _, body) = try await api.object("GET", "/v1/tasks/\(id)/events", token: admin)
        let events = body["events"] as? [[String: Any]] ?? []
        #expect(status == 200 && events.first?["kind"] as? String == "task" && events.count >= 3, "\(body)")
        (status, _, body) = try await api.object("POST", "/v1/tasks/\(id)/cancel", token: admin)
        #expect(status == 200 && body["state"] as? String == "cancelled", "\(body)")
        (status, _, body) = try await api.object("GET", "/v1/tasks/\(id)/events", token: admin)
        #expect((body["events"] as? [[String: Any]])?.last?["to"] as? String == "cancelled", "\(body)")
    }

    @Test("retry and resolve a failed step", .timeLimit(.minutes(5)))
    func retryAndResolve() async throws {
        let api = try await APIFixture()
        defer { Task { await api.shutdown() } }
        let admin = try await api.admin()
        try api.cluster.worker(namespace: "apifail")
        var (status, _, body) = try await api.object("POST", "/v1/templates", token: admin, body: Data(Self.failing.utf8),
                                                     contentType: "application/yaml")
        #expect(status == 201, "\(body)")
        (status, _, body) = try await api.object("POST", "/v1/tasks", token: admin, json: #"{"template": "apifail/flaky"}"#)
        let id = try #require(body["id"] as? String, "\(body)")

        func failedStep() async throws -> [String: Any] {
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline {
                let (_, _, task) = try await api.object("GET", "/v1/tasks/\(id)", token: admin)
                if task["state"] as? String == "error", let step = (task["steps"] as? [[String: Any]])?.first { return step }
                try await Task.sleep(for: .milliseconds(100))
            }
            Issue.record("the task never failed:\n\(api.cluster.logs)")
            return [:]
        }
        var step = try await failedStep()
        let stepID = try #require(step["id"] as? Int)
        #expect((step["last_error"] as? String)?.contains("boom") == true, "\(step)")

        (status, _, body) = try await api.object("POST", "/v1/steps/\(stepID)/retry", token: admin)
        #expect(status == 200 && body["id"] as? Int == stepID, "\(body)")
        step = try await failedStep()
        #expect(step["attempts"] as? Int ?? 0 >= 1)

        (status, _, body) = try await api.object("POST", "/v1/steps/\(stepID)/resolve", token: admin,
                                                 json: #"{"result": {"fixed": 98765432109876543210}}"#)
        #expect(status == 200 && body["state"] as? String == "resolved_manually", "\(body)")
        let (_, _, raw) = try await api.request("GET", "/v1/tasks/\(id)", token: admin)
        #expect(String(decoding: raw, as: UTF8.self).contains("98765432109876543210"))

        // Retrying a step that is not in error is a conflict, not a 500.
        (status, _, body) = try await api.object("POST", "/v1/steps/\(stepID)/retry", token: admin)
        #expect(status == 409 && (body["type"] as? String)?.hasSuffix("conflict") == true, "\(body)")
    }

    @Test("each error class is problem+json with the right status", .timeLimit(.minutes(5)))
    func errors() async throws {
        let api = try await APIFixture(arguments: ["--http-body-limit", "2048"])
        defer { Task { await api.shutdown() } }
        let admin = try await api.admin()
        try await api.registerOrder()

        func problem(_ method: String, _ path: String, json: String? = nil, body: Data? = nil, contentType: String? = nil,
                     expect expected: Int, type: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String: Any] {
            let (status, headers, object) = try await api.object(method, path, token: admin, json: json, body: body, contentType: contentType)
            #expect(status == expected, "\(object)", sourceLocation: sourceLocation)
            #expect(headers["content-type"] == "application/problem+json", "\(headers)", sourceLocation: sourceLocation)
            #expect(object["type"] as? String == "urn:orcastra:problem:\(type)", "\(object)", sourceLocation: sourceLocation)
            #expect(object["status"] as? Int == expected && object["title"] is String, sourceLocation: sourceLocation)
            return object
        }

        // Malformed JSON: 400 with line and column.
        var body = try await problem("POST", "/v1/tasks", json: "{\n  \"template\": \"shop/order\",\n  \"context\": {\"order_id\": 1,}\n}",
                                     expect: 400, type: "malformed-json")
        #expect(body["line"] as? Int == 3 && body["column"] is Int, "\(body)")
        // The context fails the input schema: 422 naming each field.
        body = try await problem("POST", "/v1/tasks", json: #"{"template": "shop/order", "context": {"order_id": "x", "email": 5}}"#,
                                 expect: 422, type: "invalid-context")
        let fields = (body["errors"] as? [[String: Any]] ?? []).compactMap { $0["path"] as? String }.sorted()
        #expect(fields.count == 2 && fields.allSatisfy { $0.contains("order_id") || $0.contains("email") }, "\(body)")
        // A body that does not match the API (a missing field, an unknown one, a wrong type): 422.
        _ = try await problem("POST", "/v1/tasks", json: #"{"context": {}}"#, expect: 422, type: "invalid-request")
        _ = try await problem("POST", "/v1/tasks", json: #"{"template": "shop/order", "colour": 1}"#, expect: 422, type: "invalid-request")
        _ = try await problem("POST", "/v1/tasks", json: #"{"template": "shop/order", "context": {"order_id": 1}, "delay": "1h", "run_at": "2099-01-01T00:00:00Z"}"#,
                              expect: 422, type: "invalid-request")
        // An unknown template: 404 with the closest names.
        body = try await problem("POST", "/v1/tasks", json: #"{"template": "shop/ordr", "context": {"order_id": 1}}"#,
                                 expect: 404, type: "unknown-template")
        #expect((body["suggestions"] as? [String])?.contains { $0.hasPrefix("shop/order") } == true, "\(body)")
        // Unknown task and step; ids that are not ids.
        _ = try await problem("GET", "/v1/tasks/\(UUID().uuidString.lowercased())", expect: 404, type: "unknown-task")
        _ = try await problem("GET", "/v1/tasks/\(UUID().uuidString.lowercased())/events", expect: 404, type: "unknown-task")
        _ = try await problem("POST", "/v1/tasks/\(UUID().uuidString.lowercased())/cancel", expect: 404, type: "unknown-task")
        _ = try await problem("POST", "/v1/steps/987654321/retry", expect: 404, type: "unknown-step")
        _ = try await problem("POST", "/v1/steps/987654321/resolve", json: #"{"result": 1}"#, expect: 404, type: "unknown-step")
        _ = try await problem("GET", "/v1/tasks/not-a-uuid", expect: 400, type: "bad-request")
        _ = try await problem("GET", "/v1/templates/shop/nothing", expect: 404, type: "unknown-template")
        _ = try await problem("GET", "/v1/templates/shop/order/9.9.9", expect: 404, type: "unknown-template")
        _ = try await problem("GET", "/v1/tasks?cursor=nonsense", expect: 400, type: "bad-request")
        // A body over the limit: 413.
        let big = #"{"template": "shop/order", "context": {"pad": ""# + String(repeating: "x", count: 4096) + "\"}}"
        _ = try await problem("POST", "/v1/tasks", json: big, expect: 413, type: "body-too-large")
        // Unknown routes and methods.
        _ = try await problem("GET", "/v1/nothing", expect: 404, type: "unknown-route")
        _ = try await problem("DELETE", "/v1/tasks", expect: 405, type: "method-not-allowed")
        let (status, headers, _) = try await api.request("PUT", "/v1/templates", token: admin)
        #expect(status == 405 && headers["allow"] == "GET, POST", "\(headers)")
        // A template with several mistakes: all of them at once, each with line, column and path.
        body = try await problem("POST", "/v1/templates",
                                 body: Data("namespace: shop\nname: bad\nversion: one\nsteps:\n  - {name: a, handler: x, depends_on: [zz]}\n".utf8),
                                 contentType: "application/yaml", expect: 422, type: "invalid-template")
        let issues = body["errors"] as? [[String: Any]] ?? []
        #expect(issues.count >= 2 && issues.allSatisfy { $0["line"] is Int && $0["column"] is Int && $0["path"] is String }, "\(body)")
        // JSON sent as something else.
        _ = try await problem("POST", "/v1/tasks", json: #"{"template": "shop/order"}"#, contentType: "text/plain",
                              expect: 415, type: "unsupported-media-type")
        // The orchestrator logged no internal error for any of these.
        #expect(!api.cluster.logs.contains("internal error answering"), "\(api.cluster.logs)")
    }

    @Test("auth: missing, wrong, revoked, expired and wrong-scope tokens", .timeLimit(.minutes(5)))
    func auth() async throws {
        let api = try await APIFixture()
        defer { Task { await api.shutdown() } }
        let reader = try await api.token("tasks:read")
        let writer = try await api.token("tasks:write")
        let expiring = try await api.token("tasks:read", name: "short", expiresIn: "1s")
        let revoked = try await api.token("tasks:read", name: "gone")

        func status(_ method: String, _ path: String, _ token: String?, json: String? = nil) async throws -> (Int, [String: Any]) {
            let (status, _, body) = try await api.object(method, path, token: token, json: json)
            return (status, body)
        }
        #expect(try await status("GET", "/v1/tasks", nil).0 == 401)
        #expect(try await status("GET", "/v1/tasks", "orc_000000000000_nope").0 == 401)
        #expect(try await status("GET", "/v1/tasks", "not a token").0 == 401)
        // A token differing only in its secret is refused.
        #expect(try await status("GET", "/v1/tasks", String(reader.dropLast()) + (reader.last == "A" ? "B" : "A")).0 == 401)
        #expect(try await status("GET", "/v1/tasks", reader).0 == 200)
        // Wrong scope: 403; admin implies all.
        let (forbidden, body) = try await status("POST", "/v1/tasks", reader, json: #"{"template": "shop/order"}"#)
        #expect(forbidden == 403 && (body["detail"] as? String)?.contains("tasks:write") == true, "\(body)")
        #expect(try await status("GET", "/v1/tasks", writer).0 == 403)
        #expect(try await status("POST", "/v1/templates", writer).0 == 403)
        #expect(try await status("GET", "/v1/templates", try await api.admin()).0 == 200)
        // Health checks need no token.
        #expect(try await status("GET", "/healthz", nil).0 == 200)
        #expect(try await status("GET", "/readyz", nil).0 == 200)

        // Revoked: refused once the one-second cache has passed.
        #expect(try await status("GET", "/v1/tasks", revoked).0 == 200)
        let outcome = try await CommandLineTool("orcastra").run(["token", "revoke", "gone"], environment: ["ORCASTRA_DATABASE_URL": api.cluster.url])
        #expect(outcome.status == 0, "\(outcome.output)")
        try await Task.sleep(for: .milliseconds(1100))
        let (revokedStatus, revokedBody) = try await status("GET", "/v1/tasks", revoked)
        #expect(revokedStatus == 401 && (revokedBody["detail"] as? String)?.contains("revoked") == true, "\(revokedBody)")
        // Expired.
        try await Task.sleep(for: .milliseconds(200))
        let (expiredStatus, expiredBody) = try await status("GET", "/v1/tasks", expiring)
        #expect(expiredStatus == 401 && (expiredBody["detail"] as? String)?.contains("expired") == true, "\(expiredBody)")

        // token list shows them, and never a secret.
        let list = try await CommandLineTool("orcastra").run(["token", "list", "--json"], environment: ["ORCASTRA_DATABASE_URL": api.cluster.url])
        let tokens = try JSONSerialization.jsonObject(with: Data(list.standardOutput.utf8)) as? [[String: Any]] ?? []
        #expect(tokens.count == 5 && !list.standardOutput.contains(reader), "\(list.output)")
        #expect(tokens.first { $0["name"] as? String == "gone" }?["revoked_at"] is String)
        #expect(tokens.first { $0["name"] as? String == "tasks-read" }?["last_used_at"] is String)
    }
}
