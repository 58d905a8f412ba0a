import Foundation
import OrcastraTesting
import Testing

/// The API's JSON as curl shows it: a template reference reads `shop/order@1.0.0`, as docs/api.md
/// and the README print it. The server's encoder escaped every slash (`"shop\/order@1.0.0"`):
/// valid JSON, but not what the docs show nor what a person would grep for.
@Suite(.timeLimit(.minutes(6))) struct APIJSONTextTests {
    @Test func slashesAreNotEscaped() async throws {
        let api = try await APIFixture()
        defer { Task { await api.shutdown() } }
        try await api.registerOrder()
        let token = try await api.admin()
        let (status, _, body) = try await api.request("POST", "/v1/tasks", token: token,
                                                      json: #"{"template": "shop/order", "context": {"order_id": 1}}"#)
        let text = String(decoding: body, as: UTF8.self)
        #expect(status == 201, "\(text)")
        #expect(text.contains("\"shop/order@1.0.0\""), "\(text)")
        #expect(!text.contains("\\/"), "\(text)")
        let (listed, _, templates) = try await api.request("GET", "/v1/templates", token: token)
        #expect(listed == 200)
        #expect(!String(decoding: templates, as: UTF8.self).contains("\\/"), "\(String(decoding: templates, as: UTF8.self))")
    }
}
