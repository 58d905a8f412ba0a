import Foundation
import Hummingbird
import OrcastraClient
import OrcastraStore
import OrcastraTemplates

/// The repair actions. Each link leads to a confirmation page (`GET`), whose form `POST`s with
/// the session's CSRF token; the outcome is shown on the task's page after a redirect, and a
/// refusal (the step is not in error any more, …) on the confirmation page again with 409.
/// Read-only sessions never get here: ``Dashboard/respond(_:_:)`` refuses their POSTs with 403,
/// and the pages show them no buttons.
extension Dashboard {
    func confirm(_ action: DashboardRoute.TaskAction, task text: String, session: DashboardSession,
                 error: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        let task = try await client.task(try Self.taskID(text))
        let id = task.id.uuidString.lowercased()
        var values: [String: Any] = ["csrf": session.csrfToken, "back": "/tasks/\(id)", "action": "/tasks/\(id)/\(action.rawValue)"]
        switch action {
        case .cancel:
            values["heading"] = "Cancel task \(id.prefix(8))?"
            values["question"] = "Task \(id) (\(task.template), \(StateLabel(task.state.rawValue).text)) will be cancelled: steps not yet running are cancelled at once, running ones when their worker next reports. This cannot be undone."
            values["button"] = "Cancel the task"
            values["buttonClass"] = "danger"
            values["reason"] = "cancelled from the dashboard by \(session.tokenName)"
        case .retry:
            values["heading"] = "Retry the failed steps of task \(id.prefix(8))?"
            values["question"] = "Every step of task \(id) in error (\(task.failedSteps.map(\.name).joined(separator: ", "))) goes back in line with a fresh retry budget."
            values["button"] = "Retry all failed steps"
            values["reason"] = "retried from the dashboard by \(session.tokenName)"
        }
        if let error { values["error"] = error }
        return html(status, "confirm", values, title: values["heading"] as? String ?? "Confirm", session: session, nav: "Tasks")
    }

    func perform(_ action: DashboardRoute.TaskAction, task text: String, form: FormFields, session: DashboardSession) async throws -> Response {
        let id = try Self.taskID(text)
        let reason = form.nonEmpty("reason") ?? "from the dashboard by \(session.tokenName)"
        do {
            switch action {
            case .cancel:
                try await client.cancel(id, reason: reason)
                return Self.redirect("/tasks/\(id.uuidString.lowercased())?done=cancelled")
            case .retry:
                let count = try await client.retryTask(id, reason: reason)
                return Self.redirect("/tasks/\(id.uuidString.lowercased())?done=retried-\(count)")
            }
        } catch let error as ClientError {
            return try await confirm(action, task: text, session: session, error: error.description, status: .conflict)
        }
    }

    func confirm(_ action: DashboardRoute.StepAction, step text: String, session: DashboardSession,
                 error: String? = nil, status: HTTPResponse.Status = .ok, resultText: String = "null") async throws -> Response {
        let history = try await client.step(try Self.stepID(text))
        let step = history.step
        var values: [String: Any] = ["csrf": session.csrfToken, "back": "/steps/\(step.id)", "action": "/steps/\(step.id)/\(action.rawValue)"]
        switch action {
        case .retry:
            values["heading"] = "Retry step \(step.name)?"
            values["question"] = "Step \(step.name) (\(StateLabel(step.state.rawValue).text), \(step.attempts) of \(step.maxAttempts) attempts used) goes back in line with a fresh retry budget; its task resumes."
            values["button"] = "Retry the step"
            values["reason"] = "retried from the dashboard by \(session.tokenName)"
        case .resolve:
            values["heading"] = "Resolve step \(step.name) by hand?"
            values["question"] = "Step \(step.name) becomes “resolved by hand” with the result below, and its children run as if it had completed with it."
            values["button"] = "Resolve the step"
            values["resolve"] = true
            values["resultText"] = resultText
            values["reason"] = "resolved from the dashboard by \(session.tokenName)"
        }
        if let error { values["error"] = error }
        return html(status, "confirm", values, title: values["heading"] as? String ?? "Confirm", session: session, nav: "Tasks")
    }

    func perform(_ action: DashboardRoute.StepAction, step text: String, form: FormFields, session: DashboardSession) async throws -> Response {
        let id = try Self.stepID(text)
        let reason = form.nonEmpty("reason") ?? "from the dashboard by \(session.tokenName)"
        let resultText = form["result"] ?? "null"
        do {
            switch action {
            case .retry:
                try await client.retryStep(id, reason: reason)
                let history = try await client.step(id)
                return Self.redirect("/tasks/\(history.taskID.uuidString.lowercased())?done=step-retried")
            case .resolve:
                let result: JSONValue
                do {
                    result = try JSONValue(parsing: resultText.isEmpty ? "null" : resultText)
                } catch {
                    return try await confirm(action, step: text, session: session,
                                             error: "The result is not JSON: line \(error.line), column \(error.column): \(error.problem). Write JSON, e.g. {\"ok\": true} or null.",
                                             status: .badRequest, resultText: resultText)
                }
                try await client.resolveStep(id, result: result, reason: reason)
                let history = try await client.step(id)
                return Self.redirect("/tasks/\(history.taskID.uuidString.lowercased())?done=resolved")
            }
        } catch let error as ClientError {
            return try await confirm(action, step: text, session: session, error: error.description, status: .conflict, resultText: resultText)
        }
    }

    static func taskID(_ text: String) throws -> UUID {
        guard let id = UUID(uuidString: text) else { throw DashboardInputError(description: "'\(text)' is not a task id (a UUID).") }
        return id
    }

    static func stepID(_ text: String) throws -> Int64 {
        guard let id = Int64(text) else { throw DashboardInputError(description: "'\(text)' is not a step id (a whole number).") }
        return id
    }
}
