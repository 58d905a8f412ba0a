import Foundation
import OrcastraAPIClient
import OrcastraClient
import OrcastraCommandLine
import OrcastraDevDB
import OrcastraMigrations
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates

/// The exit codes scripts can rely on (documented in docs/cli.md).
enum ExitCode: Int32 {
    case success = 0
    /// Something unexpected; the message says what.
    case failure = 1
    /// `--wait`: the task ended in `error` (a step failed for good; retry or resolve it).
    case taskFailed = 2
    /// `--wait`: the task was cancelled.
    case taskCancelled = 3
    /// `--wait --timeout`: the task was still running when the timeout passed.
    case timedOut = 4
    /// `migrate status`: migrations or repeatable files are waiting to be applied.
    case migrationsPending = 5
    /// Bad command-line usage (argument parser's own code).
    case usage = 64
    /// Bad input: an invalid template, context or reference.
    case invalidInput = 65
    /// The thing named does not exist (template, task, step).
    case notFound = 66
    /// The database could not be reached, or has no Orcastra schema.
    case unavailable = 69
    /// A conflict with what is stored (e.g. a template version with other content, a deprecated version;
    /// roles not set up in this database).
    case conflict = 75
    /// The database role lacks a privilege for this (SQLSTATE 42501 or OR007; docs/security.md).
    case noPermission = 77
}

/// An error with its exit code, already phrased for a person.
struct CLIFailure: Error {
    var message: String
    var exitCode: ExitCode
}

enum ExitCodes {
    /// Maps the library's errors to a message and an exit code.
    static func userFacing(_ error: any Error) -> (message: String, code: ExitCode)? {
        switch error {
        case let error as TemplateValidationError: return ("\(error)", .invalidInput)
        case let error as TemplateReferenceError: return ("\(error)", .invalidInput)
        case let error as StoreError:
            switch error {
            case .templateNotFound, .onlyPrereleases, .noReleaseToTake, .workflowTemplateMissing: return ("\(error)", .notFound)
            case .templateDeprecated, .deprecatedCannotBeDefault, .defaultCannotBeDeprecated: return ("\(error)", .conflict)
            case .taskNotFound: return ("\(error) `orcastra task list` shows recent tasks and their ids.", .notFound)
            case .contextInvalid(let template, _):
                return ("\(error) `orcastra template show \(template) --source` shows the schema.", .invalidInput)
            case .versionConflict: return ("\(error)", .conflict)
            case .workflowCycle: return ("\(error)", .invalidInput)
            case .contextTooLarge, .contextUnstorable, .concurrencyKeyMissing: return ("\(error)", .invalidInput)
            case .traceparentInvalid: return ("--traceparent: \(error)", .invalidInput)
            case .notMigrated: return ("\(error)", .unavailable)
            case .notInTransaction: return ("\(error)", .invalidInput)
            }
        case let error as ClientError:
            switch error {
            case .stepNotFound: return ("\(error)", .notFound)
            case .stepActionRefused, .taskActionRefused: return ("\(error)", .conflict)
            case .invalidJSON, .unstorableJSON: return ("\(error)", .invalidInput)
            case .waitTimedOut: return ("\(error)", .timedOut)
            case .registryMissing: return ("\(error)", .unavailable)
            }
        case let error as ScheduleError:
            switch error {
            case .notFound: return ("\(error)", .notFound)
            case .ambiguous: return ("\(error)", .invalidInput)
            case .alreadyExists: return ("\(error)", .conflict)
            case .schedulesMissing: return ("\(error)", .unavailable)
            }
        case let error as RoleError:
            switch error {
            case .cannotCreateRoles, .notPermitted: return ("\(error)", .noPermission)
            case .notSetUp: return ("\(error)", .conflict)
            case .unknownRole: return ("\(error)", .notFound)
            }
        case let error as JSONValueParseError: return ("\(error)", .invalidInput)
        case let error as APITokenError:
            switch error {
            case .notFound: return ("\(error)", .notFound)
            case .nameTaken: return ("\(error)", .conflict)
            case .invalidName: return ("\(error)", .invalidInput)
            }
        case let error as MigrationError:
            switch error {
            case .folderMissing, .notAFolder, .folderEmpty, .unreadable, .bundleMissing: return ("\(error)", .notFound)
            case .notUTF8, .badFileName, .duplicateVersion, .checksumMismatch: return ("\(error)", .invalidInput)
            case .unknownApplied, .failed: return ("\(error)", .failure)
            }
        case let error as LocalPostgresError: return ("\(error)", .unavailable)
        case let error as APIProblem: return APIExitCodes.userFacing(error)
        case let error as APIUnreachable: return ("\(error)", .unavailable)
        case let error as MalformedConnectionString: return ("\(error)", .usage)
        case let error as PostgresError:
            switch error {
            case .connectionFailed, .connectionLost: return ("\(error)", .unavailable)
            case .server(let server) where server.sqlState == "42P01" || server.sqlState == "3F000":
                return ("\(StoreError.notMigrated)", .unavailable)
            case .server(let server) where server.sqlState == "22P05":
                return ("The JSON holds \\u0000 (a NUL character), which PostgreSQL cannot store in jsonb; remove it.", .invalidInput)
            case .server(let server) where server.sqlState == "42501" || server.sqlState == "OR007":
                return ("\(server.message). The database role this command connects as lacks the privilege; docs/security.md says which role may do what.",
                        .noPermission)
            case .invalidParameter: return ("\(error)", .invalidInput)
            default: return ("\(error)", .failure)
            }
        default: return nil
        }
    }
}
