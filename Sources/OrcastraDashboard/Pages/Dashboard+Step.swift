import Foundation
import Hummingbird
import OrcastraClient
import OrcastraStateMachines
import OrcastraTemplates

extension Dashboard {
    /// `GET /steps/{id}`: the step's input (task context and parents' results), result, every
    /// attempt (worker, duration, error with the end of stderr) and its transition timeline.
    func stepPage(_ text: String, query: FormFields, session: DashboardSession) async throws -> Response {
        guard let id = Int64(text) else {
            throw DashboardInputError(description: "'\(text)' is not a step id (a whole number).")
        }
        let history = try await client.step(id)
        let step = history.step
        let task = try await client.task(history.taskID)
        var parents: [String: JSONValue] = [:]
        for parent in task.steps where step.dependsOn.contains(parent.name) {
            parents[parent.name] = parent.result ?? .null
        }
        let input = JSONValue.object(["context": task.context, "parents": .object(parents)])
        var values: [String: Any] = [
            "id": step.id, "name": step.name, "taskID": history.taskID.uuidString.lowercased(), "template": history.template,
            "state": StateLabel(step.state.rawValue).context, "reason": step.stateReason, "namespace": step.namespace,
            "attempts": step.attempts, "maxAttempts": step.maxAttempts,
            "dependsOn": step.dependsOn.isEmpty ? "—" : step.dependsOn.joined(separator: ", "),
            "started": Formatting.time(step.startedAt), "finished": Formatting.time(step.finishedAt),
            "duration": step.startedAt == nil ? "—" : Formatting.duration(from: step.startedAt, to: step.finishedAt),
            "input": PrettyJSON.text(input), "result": step.result.map { PrettyJSON.text($0) } ?? "— (none yet)",
            "canWrite": session.canWrite, "canRetry": step.state == .error,
            "canResolve": [.error, .waitingForRetry, .pending].contains(step.state),
        ]
        if let error = step.lastError { values["lastError"] = error }
        values["attemptRows"] = history.attempts.map { attempt -> [String: Any] in
            var row: [String: Any] = ["number": attempt.number, "worker": attempt.worker ?? "—", "started": Formatting.time(attempt.startedAt),
                                      "duration": Formatting.duration(attempt.durationSeconds)]
            if let outcome = attempt.outcome { row["outcome"] = StateLabel(outcome.rawValue).context }
            if let error = attempt.error { row["error"] = error }
            return row
        }
        values["transitions"] = history.transitions.map { event -> [String: Any] in
            ["time": Formatting.time(event.time), "from": event.from ?? "(created)", "to": StateLabel(event.to).context, "reason": event.reason]
        }
        return html(.ok, "step", values, title: "Step \(step.name)", session: session, nav: "Tasks", notice: Self.outcome(query["done"]))
    }
}
