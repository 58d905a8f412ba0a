import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import OrcastraDashboard
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

/// A migrated database with two tokens (tasks:write and read-only), the dashboard on an
/// in-process router, and a browser's cookie jar in miniature.
struct DashboardFixture: Sendable {
    let pool: PostgresPool
    let writer: String
    let reader: String

    static let diamond = """
        namespace: shop
        name: diamond
        version: 1.0.0
        steps:
          - {name: a, handler: shop.a}
          - {name: b, handler: shop.b, depends_on: [a]}
          - {name: c, handler: shop.c, depends_on: [a]}
          - {name: d, handler: shop.d, depends_on: [b, c]}
        """

    static func make() async throws -> DashboardFixture {
        let pool = PostgresPool(conninfo: try await TestDatabases.shared.makeDatabase(), maximumConnections: 4)
        let tokens = APITokens(pool: pool)
        let writer = try await tokens.create(name: "writer", scopes: [.tasksRead, .tasksWrite], expiresAt: nil).token
        let reader = try await tokens.create(name: "reader", scopes: [.tasksRead], expiresAt: nil).token
        let fixture = DashboardFixture(pool: pool, writer: writer, reader: reader)
        try await fixture.register(Self.diamond)
        return fixture
    }

    func register(_ yaml: String) async throws {
        let template = try TemplateParser.parse(yaml: yaml, file: "test.yaml")
        _ = try await TemplateRegistry(pool: pool).register(LoadedTemplate(file: "test.yaml", source: yaml, template: template))
    }

    func submit(_ reference: String, context: JSONValue = .object([:]), key: String? = nil) async throws -> UUID {
        try await TaskCreator(pool: pool).create(TaskRequest(template: TemplateReference(parsing: reference), context: context,
                                                             idempotencyKey: key)).taskID
    }

    /// Runs `body` with a client of the dashboard mounted on a router, as the server mounts it.
    func withClient(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let router = Router()
        router.add(middleware: Dashboard(pool: pool).middleware())
        router.get("/v1/fallthrough") { _, _ in "api" }
        let app = Application(router: router)
        try await app.test(.router, body)
    }
}

/// What the tests need of a response.
struct Page {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: String
}

extension TestClientProtocol {
    func page(_ method: HTTPRequest.Method, _ uri: String, cookies: [String] = [], form: [String: String]? = nil) async throws -> Page {
        var headers = HTTPFields()
        if !cookies.isEmpty { headers[.cookie] = cookies.joined(separator: "; ") }
        var body: ByteBuffer?
        if let form {
            headers[.contentType] = "application/x-www-form-urlencoded"
            let allowed = CharacterSet.alphanumerics
            body = ByteBuffer(string: form.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&"))
        }
        return try await execute(uri: uri, method: method, headers: headers, body: body) { response in
            Page(status: response.status, headers: response.headers, body: String(buffer: response.body))
        }
    }

    /// Signs in as a browser does: the form (its CSRF cookie and field), then the POST. Returns
    /// the session cookie (`name=value`).
    func signIn(_ token: String) async throws -> String {
        let form = try await page(.get, "/login")
        let loginCookie = try #require(Self.cookies(form).first { $0.hasPrefix("orcastra_login=") })
        let csrf = try #require(Self.hidden("csrf", in: form.body))
        let answer = try await page(.post, "/login", cookies: [loginCookie], form: ["token": token, "csrf": csrf, "next": "/"])
        #expect(answer.status == .seeOther, "\(answer.body)")
        return try #require(Self.cookies(answer).first { $0.hasPrefix("orcastra_session=") && !$0.hasPrefix("orcastra_session=;") })
    }

    /// `name=value` of each Set-Cookie.
    static func cookies(_ page: Page) -> [String] {
        page.headers[values: .setCookie].map { String($0.split(separator: ";")[0]) }
    }

    static func hidden(_ name: String, in html: String) -> String? {
        guard let range = html.range(of: #"name="\#(name)" value=""#) else { return nil }
        return String(html[range.upperBound...].prefix { $0 != "\"" })
    }
}
