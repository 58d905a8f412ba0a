import Foundation
import Hummingbird

extension Dashboard {
    /// `GET /`: per namespace, live work, the oldest waiting step, live workers and a sparkline of
    /// steps finished per second; then the newest failures.
    func overview(session: DashboardSession) async throws -> Response {
        let queries = DashboardQueries(pool: client.pool)
        let loads = try await queries.namespaceLoads()
        let failures = try await queries.recentFailures()
        let namespaces = loads.map { load -> [String: Any] in
            let perSecond = load.finishedPerMinute.map { Double($0) / 60 }
            return ["name": load.namespace, "enqueued": load.enqueued, "running": load.running, "retrying": load.retrying,
                    "oldest": load.enqueued > 0 ? Formatting.duration(load.oldestWaitingSeconds) : "—",
                    "workers": load.liveWorkers, "unserved": load.liveWorkers == 0 && load.enqueued > 0,
                    "sparkline": Self.sparkline(perSecond, label: "steps per second in \(load.namespace), last 10 minutes"),
                    "rate": String(format: "%.1f/s now", perSecond.last ?? 0)]
        }
        let failureRows = failures.map { failure -> [String: Any] in
            ["time": Formatting.time(failure.time), "stepID": failure.stepID, "stepName": failure.stepName,
             "taskID": failure.taskID.uuidString.lowercased(), "taskShort": String(failure.taskID.uuidString.lowercased().prefix(8)),
             "state": StateLabel(failure.state).context, "reason": failure.reason]
        }
        let values: [String: Any] = ["namespaces": namespaces, "hasNamespaces": !namespaces.isEmpty,
                                     "failures": failureRows, "hasFailures": !failureRows.isEmpty]
        return html(.ok, "overview", values, title: "Overview", session: session, nav: "Overview")
    }

    /// A 120×24 SVG line of `values` (oldest first), scaled to its maximum.
    static func sparkline(_ values: [Double], label: String) -> String {
        let width = 120.0, height = 24.0
        let top = max(values.max() ?? 0, 0.0001)
        let step = values.count > 1 ? width / Double(values.count - 1) : width
        let points = values.enumerated().map { index, value in
            String(format: "%.1f,%.1f", Double(index) * step, height - 2 - (value / top) * (height - 4))
        }.joined(separator: " ")
        return #"<svg class="spark" width="120" height="24" viewBox="0 0 120 24" role="img" aria-label="\#(HTMLEscape.escape(label))"><polyline points="\#(points)"/></svg>"#
    }
}
