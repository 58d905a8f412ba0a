import Foundation
import HTTPTypes
import Hummingbird
import Logging
import OrcastraClient
import OrcastraPostgres
import OrcastraStore

/// The web dashboard (docs/dashboard.md): server-rendered pages at `/`, `/login`, `/tasks`,
/// `/tasks/{id}`, `/steps/{id}`, `/templates`, `/schedules`, `/workers`, signed in with an API token.
///
/// Mounted by the orchestrator's HTTP server in front of the API (``middleware()``): requests to
/// the dashboard's paths are answered here, every other request goes on to the API. Reads go
/// through ``OrcastraClient`` and a few bounded queries of its own (``DashboardQueries``); the
/// repair actions call the same SQL functions as the CLI and the API.
public struct Dashboard: Sendable {
    public let client: OrcastraClient
    public let sessions: DashboardSessions
    public let logger: Logger
    /// Mark cookies `Secure` (the server speaks HTTPS).
    public var secureCookies: Bool
    let renderer = PageRenderer()

    static let sessionCookie = "orcastra_session"
    static let loginCookie = "orcastra_login"
    /// Forms are small; anything larger is refused before it is read.
    static let formLimit = 256 * 1024

    public init(pool: PostgresPool, secureCookies: Bool = false, logger: Logger = Logger(label: "orcastra.dashboard")) {
        client = OrcastraClient(pool: pool)
        sessions = DashboardSessions(pool: pool)
        self.secureCookies = secureCookies
        self.logger = logger
    }

    /// The middleware to add to the server's router before the API's.
    public func middleware<Context: RequestContext>(context: Context.Type = Context.self) -> DashboardMiddleware<Context> {
        DashboardMiddleware(dashboard: self)
    }

    /// The scopes of the dashboard session a request's cookies carry, or nil. The API accepts it
    /// for GET requests without a bearer token (the task page's live events come from
    /// `GET /v1/tasks/{id}/events`, which a browser's EventSource calls with cookies only).
    public func sessionScopes(cookieHeader: String?) async -> Set<APIScope>? {
        guard let value = Self.cookie(Self.sessionCookie, in: cookieHeader) else { return nil }
        return try? await sessions.session(cookie: value)?.scopes
    }

    /// One request of the dashboard's.
    func respond(_ route: DashboardRoute, _ input: Request) async -> Response {
        var request = input
        guard route.methods.contains(request.method) else {
            var response = page(.methodNotAllowed, error: "\(request.uri.path) takes \(route.methods.map(\.rawValue).joined(separator: ", ")).",
                                session: nil, title: "Method not allowed")
            response.headers[.allow] = route.methods.map(\.rawValue).joined(separator: ", ")
            return response
        }
        if case .asset(let name) = route { return DashboardAssets.response(name) }
        do {
            var form = FormFields("")
            if request.method == .post {
                if let length = request.headers[.contentLength].flatMap(Int.init), length > Self.formLimit {
                    return page(.contentTooLarge, error: "The form is larger than \(Self.formLimit) bytes.", session: nil, title: "Too large")
                }
                let body: ByteBuffer
                do {
                    body = try await request.collectBody(upTo: Self.formLimit)
                } catch let error as HTTPError where error.status == .contentTooLarge {
                    return page(.contentTooLarge, error: "The form is larger than \(Self.formLimit) bytes.", session: nil, title: "Too large")
                }
                form = FormFields(String(buffer: body))
            }
            let query = FormFields(request.uri.query ?? "")
            let cookieHeader = request.headers[.cookie]
            if route == .login {
                return try await login(request.method, form: form, query: query, cookieHeader: cookieHeader)
            }
            guard let cookie = Self.cookie(Self.sessionCookie, in: cookieHeader),
                  let session = try await sessions.session(cookie: cookie) else {
                if request.method == .post {
                    return page(.forbidden, error: "You are not signed in (or your session ended): sign in again and repeat the action.",
                                session: nil, title: "Not signed in", back: "/login", backText: "Sign in")
                }
                let next = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
                return Self.redirect("/login?next=" + HTMLEscape.component(next))
            }
            if request.method == .post {
                // Every action carries the session's CSRF token (a hidden field of each form).
                guard DashboardSessions.matches(form["csrf"], session.csrfToken) else {
                    return page(.forbidden, error: "The form did not carry this session's CSRF token, so nothing was done. Reload the page and try again.",
                                session: session, title: "Refused")
                }
                if route == .logout {
                    try await sessions.signOut(cookie: cookie)
                    var response = Self.redirect("/login")
                    response.headers[values: .setCookie] = [clearedCookie(Self.sessionCookie)]
                    return response
                }
                guard session.canWrite else {
                    return page(.forbidden, error: "This token is read-only (it lacks tasks:write): it may look, not act.",
                                session: session, title: "Read-only")
                }
            }
            return try await respond(route, request.method, query: query, form: form, session: session)
        } catch {
            return failure(error, session: nil)
        }
    }

    private func respond(_ route: DashboardRoute, _ method: HTTPRequest.Method, query: FormFields, form: FormFields,
                         session: DashboardSession) async throws -> Response {
        do {
            switch route {
            case .overview: return try await overview(session: session)
            case .tasks: return try await taskList(query: query, session: session)
            case .task(let id): return try await taskPage(id, query: query, session: session)
            case .taskAction(let id, let action):
                return method == .post ? try await perform(action, task: id, form: form, session: session)
                                       : try await confirm(action, task: id, session: session)
            case .step(let id): return try await stepPage(id, query: query, session: session)
            case .stepAction(let id, let action):
                return method == .post ? try await perform(action, step: id, form: form, session: session)
                                       : try await confirm(action, step: id, session: session)
            case .templates: return try await templateList(session: session)
            case .template(let namespace, let name, let version):
                return try await templatePage(namespace: namespace, name: name, version: version, session: session)
            case .schedules: return try await scheduleList(session: session)
            case .workers: return try await workerList(session: session)
            case .asset, .login, .logout: return page(.notFound, error: "No such page.", session: session, title: "Not found")
            }
        } catch {
            return failure(error, session: session)
        }
    }

    // MARK: - Responses

    /// A page in the layout, with the security headers every page carries.
    func html(_ status: HTTPResponse.Status = .ok, _ template: String, _ values: [String: Any], title: String,
              session: DashboardSession?, nav: String? = nil, notice: String? = nil, live: String? = nil) -> Response {
        var layout: [String: Any] = ["title": title]
        if let session {
            layout["session"] = ["name": session.tokenName, "canWrite": session.canWrite, "csrf": session.csrfToken,
                                 "nav\(nav ?? "")": true] as [String: Any]
        }
        if let notice { layout["notice"] = notice }
        if let live { layout["live"] = live }
        let text = renderer.render(template, values, layout: layout)
        return Self.htmlResponse(status, text)
    }

    static func htmlResponse(_ status: HTTPResponse.Status, _ text: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        Self.secure(&headers)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// A strict Content-Security-Policy (scripts, styles and connections from this origin only:
    /// no inline script or style, no framing) and its companions.
    static func secure(_ headers: inout HTTPFields) {
        headers[.contentSecurityPolicy] = contentSecurityPolicy
        headers[.xContentTypeOptions] = "nosniff"
        headers[.xFrameOptions] = "DENY"
        headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
    }

    static let contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    func page(_ status: HTTPResponse.Status, error message: String, session: DashboardSession?, title: String,
              back: String = "/", backText: String = "Back to the overview") -> Response {
        html(status, "error", ["heading": title, "message": message, "back": back, "backText": backText], title: title, session: session)
    }

    static func redirect(_ location: String) -> Response {
        var headers = HTTPFields()
        headers[.location] = location
        headers[.cacheControl] = "no-store"
        secure(&headers)
        return Response(status: .seeOther, headers: headers)
    }

    /// A library error as a page: unknown ids are 404, refusals 409, anything else 500 without detail.
    func failure(_ error: any Error, session: DashboardSession?) -> Response {
        switch error {
        case StoreError.taskNotFound(let id):
            return page(.notFound, error: "No task with id \(id).", session: session, title: "Unknown task", back: "/tasks", backText: "All tasks")
        case ClientError.stepNotFound(let id):
            return page(.notFound, error: "No step with id \(id).", session: session, title: "Unknown step", back: "/tasks", backText: "All tasks")
        case let error as StoreError:
            return page(.notFound, error: error.description, session: session, title: "Not found")
        case let error as DashboardInputError:
            return page(.badRequest, error: error.description, session: session, title: "Bad request")
        default:
            let incident = UUID().uuidString.lowercased().prefix(8)
            logger.error("dashboard page failed", metadata: ["incident": "\(incident)", "error": "\(String(reflecting: error))"])
            return page(.internalServerError, error: "Something went wrong on the server (incident \(incident), in its log).",
                        session: session, title: "Server error")
        }
    }

    // MARK: - Cookies

    static func cookie(_ name: String, in header: String?) -> String? {
        guard let header else { return nil }
        for part in header.split(separator: ";") {
            let pair = part.split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces) == name {
                return pair[1].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }

    func sessionCookie(_ value: String, maxAge: Int) -> String {
        "\(Self.sessionCookie)=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Strict" + (secureCookies ? "; Secure" : "")
    }

    func clearedCookie(_ name: String) -> String {
        "\(name)=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict" + (secureCookies ? "; Secure" : "")
    }
}

/// A bad filter, id or form field, said as the page shows it.
struct DashboardInputError: Error, CustomStringConvertible {
    var description: String
}

/// Answers the dashboard's paths; passes every other request to the API behind it.
public struct DashboardMiddleware<Context: RequestContext>: RouterMiddleware {
    let dashboard: Dashboard

    public func handle(_ request: Request, context: Context,
                       next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let route = DashboardRoute(path: request.uri.path) else { return try await next(request, context) }
        return await dashboard.respond(route, request)
    }
}

extension HTTPField.Name {
    static let xFrameOptions = Self("X-Frame-Options")!
}
