import OrcastraAPIClient

/// The HTTP API's problems (docs/api.md lists the types) as the same message and exit code the
/// command gives over SQL: the server's `detail` is the library error's own sentence, and the
/// hints the SQL path adds are added here the same way.
enum APIExitCodes {
    static func userFacing(_ problem: APIProblem) -> (message: String, code: ExitCode) {
        let detail = problem.detail ?? problem.title
        switch (problem.status, problem.type) {
        case (_, "unknown-task"):
            return ("\(detail) `orcastra task list` shows recent tasks and their ids.", .notFound)
        case (_, "unknown-step"):
            return ("\(detail) `orcastra task show TASK_ID` lists a task's steps with their ids.", .notFound)
        case (_, "unknown-template"), (_, "unknown-schedule"):
            return (detail, .notFound)
        case (_, "invalid-context"):
            let prefix = "The context does not match the input schema of "
            if detail.hasPrefix(prefix), let colon = detail.range(of: ": ") {
                let template = detail[detail.index(detail.startIndex, offsetBy: prefix.count)..<colon.lowerBound]
                return ("\(detail) `orcastra template show \(template) --source` shows the schema.", .invalidInput)
            }
            return (detail, .invalidInput)
        case (_, "invalid-template"):
            let issues = problem.fieldErrors.map { error in
                let place = error.line.map { line in "line \(line)" + (error.column.map { ", column \($0)" } ?? "") + ": " } ?? ""
                return "  \(place)\(error.path.map { "\($0): " } ?? "")\(error.message)"
            }
            return (([detail] + issues).joined(separator: "\n"), .invalidInput)
        case (_, "conflict"):
            return (detail, .conflict)
        case (401, _):
            return ("The API refused the request: \(detail) Pass a valid token with --api-token or ORCASTRA_API_TOKEN (`orcastra token create`).", .noPermission)
        case (403, _):
            return ("The API refused the request: \(detail)", .noPermission)
        case (404, "unknown-route"), (405, _):
            return ("The API has no such route (\(detail)); is --api-url the orchestrator's base URL, e.g. http://127.0.0.1:8080?", .unavailable)
        case (503, _):
            return (detail, .unavailable)
        case (400..<500, _):
            return (detail, .invalidInput)
        default:
            return ("The API failed to answer: \(detail)", .failure)
        }
    }
}
