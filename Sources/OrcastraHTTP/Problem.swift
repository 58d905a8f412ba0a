import Foundation
import HTTPTypes
import OpenAPIRuntime
import OrcastraAPITypes
import OrcastraClient
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates

/// An RFC 9457 problem: what every error of the API answers, as `application/problem+json`.
///
/// Handlers throw it (or a library error that ``Problem/init(_:)`` maps); the API middleware
/// renders it. `type` is `urn:orcastra:problem:<slug>`; docs/api.md lists the slugs.
public struct Problem: Error, Sendable, Encodable, Equatable {
    public struct FieldError: Sendable, Encodable, Equatable {
        public var path: String?
        public var message: String
        public var line: Int?
        public var column: Int?

        public init(path: String?, message: String, line: Int? = nil, column: Int? = nil) {
            self.path = path
            self.message = message
            self.line = line
            self.column = column
        }
    }

    public var type: String
    public var title: String
    public var status: Int
    public var detail: String?
    public var line: Int?
    public var column: Int?
    public var errors: [FieldError]?
    public var suggestions: [String]?
    /// Not part of the body: extra response headers (`Allow` for 405, `WWW-Authenticate` for 401).
    var headers: HTTPFields = [:]

    enum CodingKeys: String, CodingKey { case type, title, status, detail, line, column, errors, suggestions }

    public init(_ slug: String, _ status: HTTPResponse.Status, title: String, detail: String? = nil,
                line: Int? = nil, column: Int? = nil, errors: [FieldError]? = nil, suggestions: [String]? = nil) {
        type = "urn:orcastra:problem:\(slug)"
        self.title = title
        self.status = status.code
        self.detail = detail
        self.line = line
        self.column = column
        self.errors = errors
        self.suggestions = suggestions
    }

    public static func == (lhs: Problem, rhs: Problem) -> Bool {
        lhs.type == rhs.type && lhs.status == rhs.status && lhs.detail == rhs.detail && lhs.errors == rhs.errors
    }

    static func notFound(_ detail: String) -> Problem {
        Problem("not-found", .notFound, title: "Not found", detail: detail)
    }

    static func invalidRequest(_ detail: String, errors: [FieldError]? = nil) -> Problem {
        Problem("invalid-request", .unprocessableContent, title: "Invalid request", detail: detail, errors: errors)
    }

    static func badRequest(_ detail: String) -> Problem {
        Problem("bad-request", .badRequest, title: "Bad request", detail: detail)
    }

    /// The answer to anything that is not a known refusal: a real fault. It says nothing internal;
    /// the server logs the error under the same `incident` id.
    static func internalError(incident: String) -> Problem {
        Problem("internal", .internalServerError, title: "Internal server error",
                detail: "The server failed to answer this request. Its log has the details under incident \(incident).")
    }

    /// Maps a library error to its problem, or nil for a real fault (a 500).
    static func from(_ error: any Error) -> Problem? {
        switch error {
        case let problem as Problem: return problem
        case let error as OpenAPIRuntime.ServerError: return from(error.underlyingError)
        case let error as StoreError:
            switch error {
            case .templateNotFound(_, let suggestions):
                var problem = Problem("unknown-template", .notFound, title: "Unknown template", detail: "\(error)")
                problem.suggestions = suggestions
                return problem
            case .onlyPrereleases, .noReleaseToTake:
                return Problem("unknown-template", .notFound, title: "No version to take", detail: "\(error)")
            case .workflowCycle:
                return Problem("invalid-template", .unprocessableContent, title: "The template's sub-workflows recurse", detail: "\(error)")
            case .workflowTemplateMissing:
                return Problem("unknown-template", .notFound, title: "A sub-workflow's template is not registered", detail: "\(error)")
            case .taskNotFound:
                return Problem("unknown-task", .notFound, title: "Unknown task", detail: "\(error)")
            case .contextInvalid(_, let violations):
                return Problem("invalid-context", .unprocessableContent, title: "The context does not match the input schema",
                               detail: "\(error)",
                               errors: violations.map { FieldError(path: $0.path, message: $0.message) })
            case .contextTooLarge, .contextUnstorable:
                return Problem("invalid-context", .unprocessableContent, title: "The context cannot be stored", detail: "\(error)")
            case .concurrencyKeyMissing(_, let key):
                return Problem("invalid-context", .unprocessableContent, title: "The context has no concurrency key", detail: "\(error)",
                               errors: [FieldError(path: "context", message: "the concurrency key \(key) selects nothing")])
            case .templateDeprecated, .deprecatedCannotBeDefault, .defaultCannotBeDeprecated, .versionConflict:
                return Problem("conflict", .conflict, title: "Conflict", detail: "\(error)")
            case .traceparentInvalid:
                return Problem("invalid-request", .badRequest, title: "Invalid traceparent", detail: "\(error)")
            case .notMigrated:
                return Problem("unavailable", .serviceUnavailable, title: "Database not migrated", detail: "\(error)")
            case .notInTransaction:
                // Only a caller's own transaction (issue 21) gets this; the API never submits in one.
                return nil
            }
        case let error as OrcastraClientError:
            switch error {
            case .stepNotFound(let id):
                return Problem("unknown-step", .notFound, title: "Unknown step", detail: "No step with id \(id).")
            case .stepActionRefused, .taskActionRefused:
                return Problem("conflict", .conflict, title: "Refused in this state", detail: "\(error)")
            case .invalidJSON(_, let problem, let line, let column):
                return Problem("malformed-json", .badRequest, title: "Malformed JSON", detail: problem, line: line, column: column)
            case .unstorableJSON:
                return Problem("invalid-request", .unprocessableContent, title: "Cannot be stored", detail: "\(error)")
            case .registryMissing:
                return Problem("unavailable", .serviceUnavailable, title: "Database not migrated", detail: "\(error)")
            case .waitTimedOut:
                return nil
            }
        case let error as ScheduleError:
            switch error {
            case .notFound(_, let suggestions):
                var problem = Problem("unknown-schedule", .notFound, title: "Unknown schedule", detail: "\(error)")
                problem.suggestions = suggestions
                return problem
            case .ambiguous:
                return Problem("invalid-request", .unprocessableContent, title: "Ambiguous schedule name", detail: "\(error)")
            case .alreadyExists:
                return Problem("conflict", .conflict, title: "Conflict", detail: "\(error)")
            case .schedulesMissing:
                return Problem("unavailable", .serviceUnavailable, title: "Database not migrated", detail: "\(error)")
            }
        case let error as TemplateValidationError:
            return Problem("invalid-template", .unprocessableContent, title: "Invalid template",
                           detail: "The template has \(error.issues.count) problem\(error.issues.count == 1 ? "" : "s").",
                           errors: error.issues.map { FieldError(path: $0.path, message: $0.message, line: $0.line, column: $0.column) })
        case let error as TemplateReferenceError:
            return Problem("invalid-request", .unprocessableContent, title: "Invalid template reference", detail: "\(error)",
                           errors: [FieldError(path: "template", message: error.reason)])
        case let error as PostgresError:
            switch error {
            case .connectionFailed, .connectionLost:
                return Problem("unavailable", .serviceUnavailable, title: "Database unavailable",
                               detail: "The database cannot be reached right now; try again.")
            case .server(let server) where server.sqlState == "42P01" || server.sqlState == "3F000":
                return Problem("unavailable", .serviceUnavailable, title: "Database not migrated", detail: "\(StoreError.notMigrated)")
            case .server(let server) where server.sqlState == "22P05":
                return invalidRequest("The JSON holds \\u0000 (a NUL character), which PostgreSQL cannot store in jsonb; remove it.")
            case .server(let server) where server.sqlState == "22008":
                return invalidRequest("A time is out of the range PostgreSQL stores (4713 BC to 294276 AD).")
            default:
                return nil
            }
        case let error as DecodingError:
            return decodingProblem(error)
        default:
            return nil
        }
    }

    /// The generated code's refusals of a body or parameter that does not match the spec.
    static func decodingProblem(_ error: DecodingError) -> Problem {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: ["."])
        }
        let field: FieldError
        switch error {
        case .typeMismatch(let type, let context):
            field = FieldError(path: path(context.codingPath), message: "must be \(Self.typeName(type))")
        case .valueNotFound(let type, let context):
            field = FieldError(path: path(context.codingPath), message: "must be \(Self.typeName(type)), got null")
        case .keyNotFound(let key, let context):
            field = FieldError(path: path(context.codingPath + [key]), message: "is required")
        case .dataCorrupted(let context):
            field = FieldError(path: path(context.codingPath), message: context.debugDescription)
        @unknown default:
            field = FieldError(path: nil, message: "\(error)")
        }
        let at = field.path.map { $0.isEmpty ? "" : "\($0) " } ?? ""
        return invalidRequest("The request does not match the API: \(at)\(field.message).", errors: [field])
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch "\(type)" {
        case "String": "a string"
        case "Int", "Int32", "Int64": "an integer"
        case "Double", "Float": "a number"
        case "Bool": "a boolean"
        case let name where name.hasPrefix("Array"): "an array"
        default: "an object"
        }
    }
}
