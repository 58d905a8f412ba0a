import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import OrcastraDashboard
import OrcastraPostgres
import OrcastraTesting
import Testing

/// The dashboard mounted on the real orchestrator's server: its pages answer beside the API, and
/// a dashboard session cookie opens the live events route of the API and nothing else.
@Suite(.timeLimit(.minutes(6))) struct DashboardMountTests {
    @Test("the dashboard and the API share the server; a session cookie opens only GET /v1/tasks/{id}/events")
    func sessionCookieOnTheAPI() async throws {
        let api = try await APIFixture()
        defer { Task { await api.shutdown() } }
        try await api.registerOrder()
        let reader = try await api.token("tasks:read")
        var (status, _, body) = try await api.object("POST", "/v1/tasks", token: try await api.admin(),
                                                     json: #"{"template": "shop/order", "context": {"order_id": 7}}"#)
        #expect(status == 201, "\(body)")
        let task = try #require(body["id"] as? String)
        let signIn = try await DashboardSessions(pool: api.cluster.pool).signIn(token: reader)
        let cookie = "orcastra_session=" + (try signIn.get().cookie)
        let headers = ["Cookie": cookie]

        let (pageStatus, pageHeaders, page) = try await api.request("GET", "/", headers: headers)
        #expect(pageStatus == 200)
        #expect(String(decoding: page, as: UTF8.self).contains("<h1>Overview</h1>"))
        #expect(pageHeaders["content-security-policy"]?.contains("script-src 'self'") == true)

        (status, _, body) = try await api.object("GET", "/v1/tasks/\(task)/events", headers: headers)
        #expect(status == 200, "\(body)")
        #expect((body["events"] as? [Any])?.isEmpty == false)
        (status, _, _) = try await api.object("GET", "/v1/tasks", headers: headers)
        #expect(status == 401, "the cookie must not open other routes")
        (status, _, _) = try await api.object("POST", "/v1/tasks/\(task)/cancel", headers: headers)
        #expect(status == 401, "the cookie must never act on the API")
        (status, _, _) = try await api.object("GET", "/v1/tasks/\(task)/events")
        #expect(status == 401)
        (status, _, body) = try await api.object("GET", "/no-such-page")
        #expect(status == 404)
        #expect(body["type"] != nil, "unknown paths are still the API's problem+json")
    }
}
