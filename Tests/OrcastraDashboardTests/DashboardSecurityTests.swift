import Foundation
import HTTPTypes
import HummingbirdTesting
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import Testing

/// Sign-in, sessions, CSRF, scopes, headers and escaping, against a real database.
@Suite("Dashboard security", .timeLimit(.minutes(3)))
struct DashboardSecurityTests {
    @Test("sign-in sets an HttpOnly SameSite=Strict session cookie; pages need it; sign-out ends it")
    func signInAndOut() async throws {
        let fixture = try await DashboardFixture.make()
        let writer = fixture.writer
        try await fixture.withClient { client in
            let anonymous = try await client.page(.get, "/tasks?state=error")
            #expect(anonymous.status == .seeOther)
            #expect(anonymous.headers[.location] == "/login?next=%2Ftasks%3Fstate%3Derror")

            let form = try await client.page(.get, "/login")
            let csrf = try #require(type(of: client).hidden("csrf", in: form.body))
            let loginCookie = try #require(type(of: client).cookies(form).first { $0.hasPrefix("orcastra_login=") })
            #expect(form.body.contains(#"name="token""#))

            let bad = try await client.page(.post, "/login", cookies: [loginCookie], form: ["token": "orc_000000000000_nope", "csrf": csrf])
            #expect(bad.status == .unauthorized)
            #expect(bad.body.contains("This token is not known."))

            let answer = try await client.page(.post, "/login", cookies: [loginCookie], form: ["token": writer, "csrf": csrf, "next": "/tasks"])
            #expect(answer.status == .seeOther)
            #expect(answer.headers[.location] == "/tasks")
            let setCookie = try #require(answer.headers[values: .setCookie].first { $0.hasPrefix("orcastra_session=") })
            #expect(setCookie.contains("HttpOnly"))
            #expect(setCookie.contains("SameSite=Strict"))
            #expect(setCookie.contains("Path=/"))
            let session = String(setCookie.split(separator: ";")[0])

            let overview = try await client.page(.get, "/", cookies: [session])
            #expect(overview.status == .ok)
            #expect(overview.body.contains("<h1>Overview</h1>"))
            #expect(overview.body.contains("writer"))

            let signOutCSRF = try #require(type(of: client).hidden("csrf", in: overview.body))
            let out = try await client.page(.post, "/logout", cookies: [session], form: ["csrf": signOutCSRF])
            #expect(out.status == .seeOther)
            let after = try await client.page(.get, "/", cookies: [session])
            #expect(after.status == .seeOther, "the session must be gone after sign-out")
        }
        await fixture.pool.shutdown()
    }

    @Test("sign-in without the form's CSRF token is refused, and an open redirect is not followed")
    func signInCSRF() async throws {
        let fixture = try await DashboardFixture.make()
        let writer = fixture.writer
        try await fixture.withClient { client in
            let refused = try await client.page(.post, "/login", form: ["token": writer])
            #expect(refused.status == .forbidden)
            #expect(!type(of: client).cookies(refused).contains { $0.hasPrefix("orcastra_session=") })

            let form = try await client.page(.get, "/login?next=//evil.example/x")
            let csrf = try #require(type(of: client).hidden("csrf", in: form.body))
            let loginCookie = try #require(type(of: client).cookies(form).first { $0.hasPrefix("orcastra_login=") })
            let answer = try await client.page(.post, "/login", cookies: [loginCookie],
                                               form: ["token": writer, "csrf": csrf, "next": "//evil.example/x"])
            #expect(answer.headers[.location] == "/")

            let huge = try await client.page(.post, "/login", form: ["token": String(repeating: "x", count: 300_000)])
            #expect(huge.status == .contentTooLarge)
            #expect(huge.body.contains("larger than"))
        }
        await fixture.pool.shutdown()
    }

    @Test("a POST without the session's CSRF token is refused and changes nothing")
    func csrfRefusal() async throws {
        let fixture = try await DashboardFixture.make()
        let task = try await fixture.submit("shop/diamond")
        let writer = fixture.writer
        try await fixture.withClient { client in
            let session = try await client.signIn(writer)
            let missing = try await client.page(.post, "/tasks/\(task)/cancel", cookies: [session], form: ["reason": "x"])
            #expect(missing.status == .forbidden)
            #expect(missing.body.contains("CSRF"))
            let wrong = try await client.page(.post, "/tasks/\(task)/cancel", cookies: [session], form: ["csrf": "forged-token"])
            #expect(wrong.status == .forbidden)
        }
        let state: String = try await fixture.pool.query("SELECT state FROM orcastra.tasks WHERE id = \(task)").first!.decode("state")
        #expect(state == "in_progress")
        await fixture.pool.shutdown()
    }

    @Test("a read-only token sees no action and is refused server-side; a writer cancels after confirming")
    func readOnlyScope() async throws {
        let fixture = try await DashboardFixture.make()
        let task = try await fixture.submit("shop/diamond")
        let (reader, writer) = (fixture.reader, fixture.writer)
        try await fixture.withClient { client in
            let session = try await client.signIn(reader)
            let page = try await client.page(.get, "/tasks/\(task)", cookies: [session])
            #expect(page.status == .ok)
            #expect(!page.body.contains("Cancel task"))
            #expect(page.body.contains("read-only"))
            let csrf = try #require(type(of: client).hidden("csrf", in: page.body))
            let refused = try await client.page(.post, "/tasks/\(task)/cancel", cookies: [session], form: ["csrf": csrf])
            #expect(refused.status == .forbidden)
            #expect(refused.body.contains("read-only"))

            let writing = try await client.signIn(writer)
            let taskPage = try await client.page(.get, "/tasks/\(task)", cookies: [writing])
            #expect(taskPage.body.contains("Cancel task"))
            let confirm = try await client.page(.get, "/tasks/\(task)/cancel", cookies: [writing])
            #expect(confirm.body.contains("Cancel the task"))
            let csrfWriter = try #require(type(of: client).hidden("csrf", in: confirm.body))
            let done = try await client.page(.post, "/tasks/\(task)/cancel", cookies: [writing], form: ["csrf": csrfWriter])
            #expect(done.status == .seeOther)
            #expect(done.headers[.location] == "/tasks/\(task.uuidString.lowercased())?done=cancelled")
            let shown = try await client.page(.get, done.headers[.location]!, cookies: [writing])
            #expect(shown.body.contains("the task was cancelled"))
        }
        let state: String = try await fixture.pool.query("SELECT state FROM orcastra.tasks WHERE id = \(task)").first!.decode("state")
        #expect(state == "cancelled")
        await fixture.pool.shutdown()
    }

    @Test("user data is escaped: a context and an idempotency key holding <script> render as text")
    func escaping() async throws {
        let fixture = try await DashboardFixture.make()
        let evil = "<script>alert('x')</script>"
        let task = try await fixture.submit("shop/diamond", context: .object(["note": .string(evil)]), key: evil)
        let stepID: Int64 = try await fixture.pool.query("SELECT id FROM orcastra.steps WHERE task_id = \(task) AND name = 'a'").first!.decode("id")
        let writer = fixture.writer
        try await fixture.withClient { client in
            let session = try await client.signIn(writer)
            for uri in ["/tasks/\(task)", "/steps/\(stepID)"] {
                let page = try await client.page(.get, uri, cookies: [session])
                #expect(page.status == .ok)
                #expect(!page.body.contains("<script>alert"), "\(uri) must not carry the script as markup")
                #expect(page.body.contains("&lt;script&gt;alert("), "\(uri) must show it as text")
            }
            // Found by its key, escaped in the search box if not found.
            let found = try await client.page(.get, "/tasks?find=\(evil.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)", cookies: [session])
            #expect(found.status == .seeOther)
            #expect(found.headers[.location] == "/tasks/\(task.uuidString.lowercased())")
        }
        await fixture.pool.shutdown()
    }

    @Test("every page carries a strict Content-Security-Policy and no inline script or style")
    func contentSecurityPolicy() async throws {
        let fixture = try await DashboardFixture.make()
        let task = try await fixture.submit("shop/diamond")
        let writer = fixture.writer
        try await fixture.withClient { client in
            let session = try await client.signIn(writer)
            for uri in ["/login", "/", "/tasks", "/tasks/\(task)", "/templates", "/templates/shop/diamond/1.0.0", "/schedules", "/workers"] {
                let page = try await client.page(.get, uri, cookies: [session])
                #expect(page.status == .ok, "\(uri): \(page.body)")
                let policy = try #require(page.headers[.contentSecurityPolicy])
                #expect(policy.contains("script-src 'self'") && policy.contains("style-src 'self'") && !policy.contains("unsafe-inline"))
                #expect(page.headers[.xContentTypeOptions] == "nosniff")
                #expect(!page.body.contains("<script>"), "\(uri) has an inline script")
                #expect(!page.body.contains("style="), "\(uri) has an inline style")
                #expect(!page.body.contains("<style"), "\(uri) has a style element")
            }
            // Other paths go on to the API behind the dashboard.
            let api = try await client.page(.get, "/v1/fallthrough")
            #expect(api.body == "api")
        }
        await fixture.pool.shutdown()
    }

    @Test("a revoked token's session ends at once")
    func revokedToken() async throws {
        let fixture = try await DashboardFixture.make()
        let reader = fixture.reader
        let pool = fixture.pool
        try await fixture.withClient { client in
            let session = try await client.signIn(reader)
            #expect(try await client.page(.get, "/", cookies: [session]).status == .ok)
            try await APITokens(pool: pool).revoke(name: "reader")
            #expect(try await client.page(.get, "/", cookies: [session]).status == .seeOther)
        }
        await fixture.pool.shutdown()
    }
}
