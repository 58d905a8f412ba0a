import Foundation
import HTTPTypes
import Hummingbird
import Logging
import OpenAPIRuntime
import OrcastraAPITypes
import OrcastraStore
import OrcastraTemplates

/// The JSON body of the request being handled, parsed by ``APIMiddleware`` with Orcastra's own
/// parser: numbers keep every digit (the generated decoder would read them as `Double`), and
/// malformed JSON is refused with its line and column before the generated code sees it.
enum RequestJSON {
    @TaskLocal static var current: JSONValue?
}

/// What every request goes through before and after the generated routes: the route table (404
/// and 405), the bearer token and its scope (401, 403), the body limit (413), malformed JSON
/// (400), and every error rendered as RFC 9457 problem+json (a 500 says nothing internal).
struct APIMiddleware<Context: RequestContext>: RouterMiddleware {
    let authenticator: TokenAuthenticator
    let bodyLimit: Int
    let logger: Logger
    /// The dashboard's sessions: the scopes of the session a request's `Cookie` header carries.
    /// Accepted, without a bearer token, only for the live events of a task (the dashboard's task
    /// page opens them with EventSource, which cannot send headers); the cookie is SameSite=Strict.
    var sessionScopes: (@Sendable (String?) async -> Set<APIScope>?)? = nil

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await process(request, context: context, next: next)
        } catch {
            return render(error, request: request)
        }
    }

    private func process(_ input: Request, context: Context,
                         next: (Request, Context) async throws -> Response) async throws -> Response {
        var request = input
        let segments = request.uri.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let candidates = APIRoute.all.filter { $0.matches(segments) }
        guard !candidates.isEmpty else {
            throw Problem("unknown-route", .notFound, title: "Not found", detail: "No such route: \(request.uri.path).")
        }
        guard let route = candidates.first(where: { $0.method == request.method }) else {
            var problem = Problem("method-not-allowed", .methodNotAllowed, title: "Method not allowed",
                                  detail: "\(request.uri.path) takes \(candidates.map(\.method.rawValue).joined(separator: ", ")).")
            problem.headers[.allow] = candidates.map(\.method.rawValue).joined(separator: ", ")
            throw problem
        }
        if let scope = route.scope {
            if request.headers[.authorization] == nil, route.acceptsSession, let sessionScopes,
               let scopes = await sessionScopes(request.headers[.cookie]) {
                guard scopes.contains(scope) || scopes.contains(.admin) else {
                    throw Problem("forbidden", .forbidden, title: "Forbidden", detail: "This session's token lacks the scope \(scope.rawValue).")
                }
            } else {
                try await authenticator.authorize(request.headers[.authorization], scope: scope)
            }
        }
        guard request.method == .post || request.method == .put || request.method == .patch else {
            return try await next(request, context)
        }
        return try Self.plainLocation(await body(route, &request, context: context, next: next))
    }

    /// The generated code writes header values percent-encoded (`%2Fv1%2Ftasks%2F…`); a
    /// `Location` is a URI reference and must stay as it is.
    private static func plainLocation(_ response: Response) -> Response {
        guard let location = response.headers[.location], let plain = location.removingPercentEncoding, plain != location else {
            return response
        }
        var response = response
        response.headers[.location] = plain
        return response
    }

    private func body(_ route: APIRoute, _ request: inout Request, context: Context,
                      next: (Request, Context) async throws -> Response) async throws -> Response {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > bodyLimit {
            throw tooLarge()
        }
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: bodyLimit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw tooLarge()
        }
        guard route.takesJSON else {
            return try await next(request, context)
        }
        if body.readableBytes == 0, request.headers[.contentType] == nil {
            // No body at all (`POST /v1/steps/ID/resolve` without one): the same as `{}`.
            var head = request.head
            head.headerFields[.contentType] = "application/json"
            request = Request(head: head, body: .init(buffer: ByteBuffer(string: "{}")))
            return try await RequestJSON.$current.withValue(.object([:])) { try await next(request, context) }
        }
        let contentType = request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        guard contentType == "application/json" else {
            throw Problem("unsupported-media-type", .unsupportedMediaType, title: "Unsupported media type",
                          detail: "Send the body as JSON with Content-Type: application/json (curl: --json).")
        }
        let json: JSONValue
        do {
            json = try JSONValue(parsingUTF8: body.readableBytesView)
        } catch {
            throw Problem("malformed-json", .badRequest, title: "Malformed JSON",
                          detail: "The body is not valid JSON at line \(error.line), column \(error.column): \(error.problem).",
                          line: error.line, column: error.column)
        }
        if case .object(var fields) = json, !route.exactFields.isEmpty,
           route.exactFields.contains(where: { fields[$0] != nil }) {
            // Parsed once: the handler reads these fields from the exact parse, so the generated
            // decoder gets the body without them (a context of up to 1 MiB is not decoded twice).
            for field in route.exactFields { fields[field] = nil }
            var head = request.head
            head.headerFields[.contentLength] = nil
            request = Request(head: head, body: .init(buffer: ByteBuffer(string: JSONValue.object(fields).jsonText)))
        }
        return try await RequestJSON.$current.withValue(json) {
            try await next(request, context)
        }
    }

    private func tooLarge() -> Problem {
        Problem("body-too-large", .contentTooLarge, title: "Body too large",
                detail: "The body is larger than this server's limit of \(bodyLimit) bytes (--http-body-limit).")
    }

    private func render(_ error: any Error, request: Request) -> Response {
        var problem: Problem
        if let mapped = Problem.from(error) {
            problem = mapped
        } else if let error = error as? OpenAPIRuntime.ServerError, error.operationInput == nil, error.httpStatus.kind == .clientError {
            // The generated code refused the request before our handler saw it (a parameter or
            // header that does not match the spec, an unexpected content type).
            problem = Problem("bad-request", error.httpStatus, title: error.httpStatus.reasonPhrase,
                              detail: "\(error.causeDescription): \(error.underlyingError)")
        } else if let error = error as? HTTPError, error.status.code < 500 {
            problem = Problem("bad-request", error.status, title: error.status.reasonPhrase, detail: error.body)
        } else {
            let incident = UUID().uuidString.lowercased().prefix(8)
            logger.error("internal error answering \(request.method) \(request.uri.path)", metadata: [
                "incident": "\(incident)", "error": "\(String(reflecting: error))",
            ])
            problem = Problem.internalError(incident: String(incident))
        }
        var headers = problem.headers
        headers[.contentType] = "application/problem+json"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(problem)) ?? Data("{\"type\":\"about:blank\",\"status\":\(problem.status)}".utf8)
        return Response(status: .init(code: problem.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// The API's routes as the middleware sees them: for 404 versus 405 and for the scope each
/// needs. The generated router (docs/openapi.yaml) does the dispatching; a test checks the two
/// agree on every path.
struct APIRoute: Sendable {
    var method: HTTPRequest.Method
    /// Literal segments, `*` for a parameter.
    var pattern: [String]
    /// Nil for the unauthenticated health checks.
    var scope: APIScope?
    /// The body is JSON (parsed by the middleware).
    var takesJSON = false
    /// A dashboard session cookie may stand in for the bearer token (read-only, live events only).
    var acceptsSession = false
    /// Fields of the JSON body the handler reads from the middleware's exact parse
    /// (``RequestJSON``) and the generated decoder is not given.
    var exactFields: [String] = []

    func matches(_ segments: [String]) -> Bool {
        segments.count == pattern.count && zip(pattern, segments).allSatisfy { $0 == "*" || $0 == $1 }
    }

    static let all: [APIRoute] = [
        APIRoute(method: .get, pattern: ["healthz"], scope: nil),
        APIRoute(method: .get, pattern: ["readyz"], scope: nil),
        APIRoute(method: .post, pattern: ["v1", "tasks"], scope: .tasksWrite, takesJSON: true, exactFields: ["context"]),
        APIRoute(method: .get, pattern: ["v1", "tasks"], scope: .tasksRead),
        APIRoute(method: .get, pattern: ["v1", "tasks", "*"], scope: .tasksRead),
        APIRoute(method: .post, pattern: ["v1", "tasks", "*", "cancel"], scope: .tasksWrite, takesJSON: true),
        APIRoute(method: .get, pattern: ["v1", "tasks", "*", "events"], scope: .tasksRead, acceptsSession: true),
        APIRoute(method: .post, pattern: ["v1", "steps", "*", "retry"], scope: .tasksWrite, takesJSON: true),
        APIRoute(method: .post, pattern: ["v1", "steps", "*", "resolve"], scope: .tasksWrite, takesJSON: true, exactFields: ["result"]),
        APIRoute(method: .get, pattern: ["v1", "templates"], scope: .tasksRead),
        APIRoute(method: .post, pattern: ["v1", "templates"], scope: .templatesWrite),
        APIRoute(method: .get, pattern: ["v1", "templates", "*", "*"], scope: .tasksRead),
        APIRoute(method: .get, pattern: ["v1", "templates", "*", "*", "*"], scope: .tasksRead),
        // Schedules are set up like templates (templates:write); triggering one starts a task (tasks:write).
        APIRoute(method: .get, pattern: ["v1", "schedules"], scope: .tasksRead),
        APIRoute(method: .post, pattern: ["v1", "schedules"], scope: .templatesWrite, takesJSON: true),
        APIRoute(method: .get, pattern: ["v1", "schedules", "*", "*"], scope: .tasksRead),
        APIRoute(method: .put, pattern: ["v1", "schedules", "*", "*"], scope: .templatesWrite, takesJSON: true),
        APIRoute(method: .delete, pattern: ["v1", "schedules", "*", "*"], scope: .templatesWrite),
        APIRoute(method: .post, pattern: ["v1", "schedules", "*", "*", "pause"], scope: .templatesWrite),
        APIRoute(method: .post, pattern: ["v1", "schedules", "*", "*", "resume"], scope: .templatesWrite),
        APIRoute(method: .post, pattern: ["v1", "schedules", "*", "*", "trigger"], scope: .tasksWrite),
        APIRoute(method: .get, pattern: ["v1", "workers"], scope: .tasksRead),
        APIRoute(method: .get, pattern: ["v1", "steps", "*", "attempts"], scope: .tasksRead),
    ]
}
