import Foundation
import Hummingbird
import OrcastraClient
import OrcastraStore
import OrcastraTemplates

/// Templates, schedules and workers: read-only pages.
extension Dashboard {
    var registry: TemplateRegistry { TemplateRegistry(pool: client.pool) }

    func templateList(session: DashboardSession) async throws -> Response {
        let rows = try await registry.list().map { summary -> [String: Any] in
            ["namespace": summary.namespace, "name": summary.name, "version": summary.version, "steps": summary.stepCount,
             "registered": Formatting.time(summary.registeredAt), "link": Self.templateLink(summary.namespace, summary.name, summary.version),
             "notes": Self.notes(isDefault: summary.isDefault, unpinned: summary.isUnpinnedChoice, deprecated: summary.isDeprecated)]
        }
        return html(.ok, "templates", ["rows": rows], title: "Templates", session: session, nav: "Templates")
    }

    /// One version: its DAG (the same layout as a task's, every step pending) and its YAML source.
    func templatePage(namespace: String, name: String, version text: String, session: DashboardSession) async throws -> Response {
        guard let version = try? SemanticVersion(parsing: text) else {
            throw DashboardInputError(description: "'\(text)' is not a version (MAJOR.MINOR.PATCH).")
        }
        let stored = try await registry.find(TemplateReference(namespace: namespace, name: name, version: version))
        let template = stored.template
        let layout = DAGLayout(template.steps.enumerated().map { index, step in
            DAGLayout.Input(id: Int64(index), name: step.name, state: "pending", dependsOn: step.dependsOn)
        })
        let versions = try await registry.list().filter { $0.namespace == namespace && $0.name == name }.map { summary -> [String: Any] in
            ["version": summary.version, "link": Self.templateLink(namespace, name, summary.version)]
        }
        var values: [String: Any] = [
            "reference": template.reference, "versions": versions, "registered": Formatting.time(stored.registeredAt),
            "hash": stored.contentHash, "source": stored.source,
            "notes": Self.notes(isDefault: stored.isDefault, unpinned: stored.isUnpinnedChoice, deprecated: stored.deprecatedAt != nil),
            // Template steps have no ids: the drawing's nodes do not link anywhere useful, so no links.
            "svg": DAGDrawing.svg(layout, title: "The steps of \(template.reference)")
                .replacingOccurrences(of: #"<a href="/steps/"#, with: #"<a data-template-step=""#),
        ]
        if let description = template.description { values["description"] = description }
        return html(.ok, "template", values, title: template.reference, session: session, nav: "Templates")
    }

    func scheduleList(session: DashboardSession) async throws -> Response {
        let rows = try await client.schedules().map { schedule -> [String: Any] in
            var row: [String: Any] = [
                "namespace": schedule.namespace, "name": schedule.name, "template": schedule.template, "cron": schedule.cron,
                "timezone": schedule.timezone, "next": Formatting.time(schedule.nextFireAt), "last": Formatting.time(schedule.lastFireAt),
                "fired": schedule.firedCount, "status": schedule.paused ? "paused" : (schedule.lastOutcome ?? "active"),
            ]
            if let task = schedule.lastTaskID { row["lastTask"] = task }
            return row
        }
        return html(.ok, "schedules", ["rows": rows], title: "Schedules", session: session, nav: "Schedules")
    }

    func workerList(session: DashboardSession) async throws -> Response {
        let rows = try await client.workers(includeStale: true).map { worker -> [String: Any] in
            ["id": worker.id, "namespace": worker.namespace, "host": worker.host, "pid": worker.pid, "running": worker.runningSteps,
             "concurrency": worker.concurrency, "started": Formatting.time(worker.startedAt),
             "seen": Formatting.duration(worker.secondsSinceLastSeen) + " ago", "stale": worker.stale]
        }
        let unserved = try await client.unservedNamespaces().map { entry -> [String: Any] in
            ["namespace": entry.namespace, "steps": entry.enqueuedSteps, "command": entry.startCommand]
        }
        return html(.ok, "workers", ["rows": rows, "unserved": unserved, "hasUnserved": !unserved.isEmpty],
                    title: "Workers", session: session, nav: "Workers")
    }

    static func templateLink(_ namespace: String, _ name: String, _ version: String) -> String {
        "/templates/\(HTMLEscape.component(namespace))/\(HTMLEscape.component(name))/\(HTMLEscape.component(version))"
    }

    static func notes(isDefault: Bool, unpinned: Bool, deprecated: Bool) -> String {
        var notes: [String] = []
        if isDefault { notes.append("default") }
        if unpinned { notes.append("taken by ns/name without a version") }
        if deprecated { notes.append("deprecated") }
        return notes.isEmpty ? "—" : notes.joined(separator: ", ")
    }
}
