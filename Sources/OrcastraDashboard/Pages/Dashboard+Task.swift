import Foundation
import Hummingbird
import OrcastraClient
import OrcastraStateMachines

extension Dashboard {
    /// `GET /tasks/{id}`: facts, actions, the DAG (layered layout, drawn on the server) and every
    /// step. While the task is not settled the page follows it live (dashboard.js).
    func taskPage(_ text: String, query: FormFields, session: DashboardSession) async throws -> Response {
        guard let id = UUID(uuidString: text) else {
            throw DashboardInputError(description: "'\(text)' is not a task id (a UUID).")
        }
        let task = try await client.task(id)
        let layout = DAGLayout(task.steps.map { DAGLayout.Input(id: $0.id, name: $0.name, state: $0.state.rawValue, dependsOn: $0.dependsOn) })
        var groupOf: [Int64: String] = [:]
        for node in layout.nodes { for step in node.steps { groupOf[step.id] = node.key } }
        let idText = task.id.uuidString.lowercased()
        let steps = task.steps.map { step -> [String: Any] in
            ["id": step.id, "name": step.name, "namespace": step.namespace, "state": StateLabel(step.state.rawValue).context,
             "attempts": step.attempts, "maxAttempts": step.maxAttempts, "started": Formatting.time(step.startedAt),
             "duration": step.startedAt == nil ? "—" : Formatting.duration(from: step.startedAt, to: step.finishedAt),
             "lastError": step.lastError ?? "", "group": groupOf[step.id] ?? ""]
        }
        var values: [String: Any] = [
            "id": idText, "state": StateLabel(task.state.rawValue).context, "template": task.template,
            "templateLink": "/templates/\(HTMLEscape.component(task.templateNamespace))/\(HTMLEscape.component(task.templateName))/\(HTMLEscape.component(task.templateVersion))",
            "reason": task.stateReason, "created": Formatting.time(task.createdAt), "started": Formatting.time(task.startedAt),
            "finished": Formatting.time(task.finishedAt), "duration": Formatting.duration(from: task.startedAt, to: task.finishedAt),
            "svg": DAGDrawing.svg(layout, title: "The steps of task \(idText) and their states"),
            "collapsed": layout.nodes.contains(where: \.isGroup), "steps": steps,
            "canWrite": session.canWrite, "canCancel": !task.isTerminal, "hasFailed": !task.failedSteps.isEmpty,
        ]
        if let key = task.idempotencyKey { values["idempotencyKey"] = key }
        if let error = task.error { values["error"] = error }
        return html(.ok, "task", values, title: "Task \(idText.prefix(8))", session: session, nav: "Tasks",
                    notice: Self.outcome(query["done"]), live: task.isSettled ? nil : idText)
    }

    /// The message an action's redirect asks for (`?done=…`): a fixed set, never text from the URL.
    static func outcome(_ code: String?) -> String? {
        guard let code else { return nil }
        switch code {
        case "cancelled": return "Done: the task was cancelled."
        case "step-retried": return "Done: the step was put back in line with a fresh retry budget."
        case "resolved": return "Done: the step was resolved with the given result; its children run."
        default:
            if code.hasPrefix("retried-"), let count = Int(code.dropFirst(8)) {
                return "Done: \(count) failed step\(count == 1 ? " was" : "s were") put back in line."
            }
            return nil
        }
    }
}
