import Foundation
import Hummingbird
import OrcastraClient
import OrcastraStateMachines

extension Dashboard {
    static let pageSize = 50

    /// `GET /tasks`: newest first, filtered by state, template namespace and name, and creation
    /// time, paged by keyset (`cursor` = the last row's created_at and id, on the `tasks_created_at`
    /// or `tasks_template` index), so page 1,000 costs what page 1 does. `find` jumps to a task
    /// by id or idempotency key.
    func taskList(query: FormFields, session: DashboardSession) async throws -> Response {
        var values: [String: Any] = [:]
        if let find = query.nonEmpty("find") {
            values["find"] = find
            if let id = try await DashboardQueries(pool: client.pool).findTask(find) {
                return Self.redirect("/tasks/\(id.uuidString.lowercased())")
            }
            values["findError"] = "No task has the id or idempotency key “\(find)”."
        }
        var filter = TaskFilter(limit: Self.pageSize)
        let state = query.nonEmpty("state")
        if let state {
            guard let parsed = TaskState(rawValue: state) else {
                throw DashboardInputError(description: "state '\(state)' is not a task state: use one of \(TaskState.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            filter.states = [parsed]
        }
        filter.namespace = query.nonEmpty("namespace")
        filter.templateName = query.nonEmpty("template")
        for (field, keyPath) in [("created_after", \TaskFilter.createdAfter), ("created_before", \TaskFilter.createdBefore)] {
            guard let text = query.nonEmpty(field) else { continue }
            guard let date = Formatting.localInput(text) else {
                throw DashboardInputError(description: "\(field) '\(text)' is not a time: write YYYY-MM-DDTHH:MM (UTC).")
            }
            filter[keyPath: keyPath] = date
        }
        if let cursor = query.nonEmpty("cursor") {
            guard let parsed = TaskCursor(cursor) else {
                throw DashboardInputError(description: "cursor '\(cursor)' is not a cursor: follow the “Next page” link.")
            }
            filter.after = parsed
        }
        let rows = try await client.tasks(filter: filter)
        values["rows"] = rows.map { row -> [String: Any] in
            ["id": row.id.uuidString.lowercased(), "short": String(row.id.uuidString.lowercased().prefix(8)), "template": row.template,
             "state": StateLabel(row.state.rawValue).context, "finished": row.finishedStepCount, "total": row.stepCount,
             "created": Formatting.time(row.createdAt), "duration": Formatting.duration(from: row.startedAt, to: row.finishedAt),
             "live": !(row.state.isTerminal || row.state == .error)]
        }
        values["states"] = TaskState.allCases.map { ["value": $0.rawValue, "selected": $0.rawValue == state] as [String: Any] }
        values["namespace"] = filter.namespace ?? ""
        values["template"] = filter.templateName ?? ""
        values["createdAfter"] = query["created_after"] ?? ""
        values["createdBefore"] = query["created_before"] ?? ""
        var kept: [String] = []
        for name in ["state", "namespace", "template", "created_after", "created_before"] {
            if let value = query.nonEmpty(name) { kept.append("\(name)=\(HTMLEscape.component(value))") }
        }
        if rows.count == filter.limit, let last = rows.last {
            values["next"] = "/tasks?" + (kept + ["cursor=\(HTMLEscape.component(last.cursor.description))"]).joined(separator: "&")
        }
        if filter.after != nil { values["first"] = "/tasks" + (kept.isEmpty ? "" : "?" + kept.joined(separator: "&")) }
        return html(.ok, "tasks", values, title: "Tasks", session: session, nav: "Tasks")
    }
}
