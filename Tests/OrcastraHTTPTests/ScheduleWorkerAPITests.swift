import Foundation
import OrcastraTesting
import Testing

/// Schedules, the worker registry and a step's attempts over HTTP, against the built
/// orchestrator on a real port: each happy path and each class of error.
@Suite(.timeLimit(.minutes(4))) struct ScheduleWorkerAPITests {
    static let nightly = #"{"name": "nightly", "template": "shop/order", "cron": "0 2 * * *", "timezone": "Europe/Paris", "context": {"order_id": 12345678901234567890123}, "catch_up": "none", "overlap": "skip"}"#

    @Test func schedulesOverHTTP() async throws {
        let api = try await APIFixture()
        defer { Task { await api.shutdown() } }
        let admin = try await api.admin()
        try await api.registerOrder()

        // Create: 201 + Location, every field as given; the same name again is 409.
        var (status, headers, body) = try await api.object("POST", "/v1/schedules", token: admin, json: Self.nightly)
        #expect(status == 201 && headers["location"] == "/v1/schedules/shop/nightly", "\(status) \(headers) \(body)")
        #expect(body["namespace"] as? String == "shop" && body["cron"] as? String == "0 2 * * *" && body["timezone"] as? String == "Europe/Paris")
        #expect(body["catch_up"] as? String == "none" && body["overlap"] as? String == "skip" && body["paused"] as? Bool == false, "\(body)")
        #expect(body["next_fire_at"] is String, "\(body)")
        (status, _, body) = try await api.object("POST", "/v1/schedules", token: admin, json: Self.nightly)
        #expect(status == 409 && body["type"] as? String == "urn:orcastra:problem:conflict", "\(body)")

        // The context keeps every digit.
        let (rawStatus, _, raw) = try await api.request("GET", "/v1/schedules/shop/nightly", token: admin)
        #expect(rawStatus == 200 && String(decoding: raw, as: UTF8.self).contains("12345678901234567890123"), "\(String(decoding: raw, as: UTF8.self))")

        // List (all, by namespace), pause, resume, trigger, delete.
        (status, _, body) = try await api.object("GET", "/v1/schedules", token: admin)
        #expect(status == 200 && (body["schedules"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["nightly"], "\(body)")
        (status, _, body) = try await api.object("GET", "/v1/schedules?namespace=elsewhere", token: admin)
        #expect(status == 200 && (body["schedules"] as? [Any])?.isEmpty == true, "\(body)")
        (status, _, body) = try await api.object("POST", "/v1/schedules/shop/nightly/pause", token: admin)
        #expect(status == 200 && body["paused"] as? Bool == true, "\(body)")
        (status, _, body) = try await api.object("POST", "/v1/schedules/shop/nightly/resume", token: admin)
        #expect(status == 200 && body["paused"] as? Bool == false, "\(body)")
        (status, headers, body) = try await api.object("POST", "/v1/schedules/shop/nightly/trigger", token: admin)
        let task = try #require(body["task_id"] as? String, "\(body)")
        #expect(status == 201 && headers["location"] == "/v1/tasks/\(task)" && body["scheduled_for"] is String, "\(status) \(headers) \(body)")
        (status, _, body) = try await api.object("GET", "/v1/tasks/\(task)", token: admin)
        #expect(status == 200 && body["template"] as? String == "shop/order@1.0.0", "\(body)")
        (status, _, body) = try await api.object("DELETE", "/v1/schedules/shop/nightly", token: admin)
        #expect(status == 200 && body["name"] as? String == "nightly", "\(body)")

        // Errors: unknown (404 with the closest names), bad fields (422 naming the field), an
        // unknown template (404), a context against the schema (422), scopes (403).
        (status, _, body) = try await api.object("GET", "/v1/schedules/shop/nightly", token: admin)
        #expect(status == 404 && body["type"] as? String == "urn:orcastra:problem:unknown-schedule", "\(body)")
        _ = try await api.object("POST", "/v1/schedules", token: admin, json: #"{"name": "hourly", "template": "shop/order", "cron": "@hourly", "context": {"order_id": 1}}"#)
        (status, _, body) = try await api.object("POST", "/v1/schedules/shop/hourlx/pause", token: admin)
        #expect(status == 404 && body["suggestions"] as? [String] == ["shop/hourly"], "\(body)")
        for (json, field) in [(#"{"name": "x", "template": "shop/order", "cron": "61 * * * *"}"#, "cron"),
                              (#"{"name": "x", "template": "shop/order", "cron": "@daily", "timezone": "Mars/Olympus"}"#, "timezone"),
                              (#"{"name": "bad name", "template": "shop/order", "cron": "@daily"}"#, "name"),
                              (#"{"name": "x", "template": "shop/order", "cron": "@daily", "context": [1]}"#, "context"),
                              (#"{"name": "x", "template": "shop/order", "cron": "@daily", "start_at": "2030-01-02T00:00:00Z", "end_at": "2030-01-01T00:00:00Z"}"#, "end_at")] {
            (status, _, body) = try await api.object("POST", "/v1/schedules", token: admin, json: json)
            let paths = (body["errors"] as? [[String: Any]] ?? []).compactMap { $0["path"] as? String }
            #expect(status == 422 && paths == [field], "\(json): \(status) \(body)")
        }
        (status, _, body) = try await api.object("POST", "/v1/schedules", token: admin, json: #"{"name": "x", "template": "shop/ordr", "cron": "@daily"}"#)
        #expect(status == 404 && body["type"] as? String == "urn:orcastra:problem:unknown-template", "\(body)")
        (status, _, body) = try await api.object("POST", "/v1/schedules", token: admin, json: #"{"name": "x", "template": "shop/order", "cron": "@daily", "context": {"order_id": "no"}}"#)
        #expect(status == 422 && body["type"] as? String == "urn:orcastra:problem:invalid-context", "\(body)")
        let reader = try await api.token("tasks:read")
        (status, _, body) = try await api.object("POST", "/v1/schedules", token: reader, json: Self.nightly)
        #expect(status == 403 && (body["detail"] as? String)?.contains("templates:write") == true, "\(body)")
        (status, _, body) = try await api.object("GET", "/v1/schedules", token: reader)
        #expect(status == 200, "\(body)")
        let writer = try await api.token("tasks:write")
        (status, _, body) = try await api.object("POST", "/v1/schedules/shop/hourly/trigger", token: writer)
        #expect(status == 201, "tasks:write may trigger: \(body)")
        (status, _, body) = try await api.object("DELETE", "/v1/schedules/shop/hourly", token: writer)
        #expect(status == 403, "but not delete: \(body)")
        (status, _, _) = try await api.object("GET", "/v1/schedules")
        #expect(status == 401)
    }

    @Test func workersAndAttemptsOverHTTP() async throws {
        let api = try await APIFixture()
        defer { Task { await api.shutdown() } }
        let admin = try await api.admin()
        let (registered, _, registration) = try await api.object("POST", "/v1/templates", token: admin, body: Data(APITests.failing.utf8),
                                                                 contentType: "application/yaml")
        #expect(registered == 201, "\(registration)")

        // Before any worker: none listed, and the namespace with a queued step is unserved.
        var (status, _, body) = try await api.object("POST", "/v1/tasks", token: admin, json: #"{"template": "apifail/flaky"}"#)
        let task = try #require(body["id"] as? String, "\(body)")
        (status, _, body) = try await api.object("GET", "/v1/workers", token: admin)
        #expect(status == 200 && (body["workers"] as? [Any])?.isEmpty == true, "\(body)")
        let unserved = (body["unserved"] as? [[String: Any]] ?? []).map { "\($0["namespace"] ?? "")=\($0["enqueued_steps"] ?? "")" }
        #expect(unserved == ["apifail=1"], "\(body)")

        // A worker runs the failing step once: listed, and the step's one attempt has its error.
        let worker = try api.cluster.worker(namespace: "apifail")
        defer { _ = worker }
        let settled = try await api.cluster.settled(try #require(UUID(uuidString: task)), within: .seconds(60))
        #expect(settled == "error")
        let (_, _, failed) = try await api.object("GET", "/v1/tasks/\(task)", token: admin)
        let step = try #require((failed["steps"] as? [[String: Any]])?.first?["id"] as? Int, "\(failed)")
        (status, _, body) = try await api.object("GET", "/v1/workers?namespace=apifail", token: admin)
        let workers = body["workers"] as? [[String: Any]] ?? []
        #expect(status == 200 && workers.count == 1 && workers.first?["namespace"] as? String == "apifail", "\(body)")
        #expect((body["unserved"] as? [Any])?.isEmpty == true, "\(body)")
        (status, _, body) = try await api.object("GET", "/v1/steps/\(step)/attempts", token: admin)
        let attempts = body["attempts"] as? [[String: Any]] ?? []
        #expect(status == 200 && body["task_id"] as? String == task && attempts.count == 1, "\(body)")
        #expect(attempts.first?["outcome"] as? String == "error" && (attempts.first?["error"] as? String)?.contains("boom") == true, "\(body)")
        #expect(attempts.first?["worker"] as? String == workers.first?["id"] as? String, "\(body)")

        // Errors: an unknown step (404), a step id that is not a number (422, as for every parameter
        // that does not match the spec), no token (401).
        (status, _, body) = try await api.object("GET", "/v1/steps/987654321/attempts", token: admin)
        #expect(status == 404 && body["type"] as? String == "urn:orcastra:problem:unknown-step", "\(body)")
        (status, _, body) = try await api.object("GET", "/v1/steps/abc/attempts", token: admin)
        #expect(status == 422, "\(body)")
        (status, _, _) = try await api.object("GET", "/v1/workers")
        #expect(status == 401)
        (status, _, body) = try await api.object("GET", "/v1/workers?include_stale=maybe", token: admin)
        #expect(status == 422, "\(body)")
    }
}
