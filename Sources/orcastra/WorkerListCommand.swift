import ArgumentParser
import Foundation
import OrcastraClient
import OrcastraCommandLine
import OrcastraTemplates

/// `orcastra worker list`: the workers the registry knows, and namespaces whose queued steps no
/// live worker serves.
struct WorkerListCommand: AsyncParsableCommand, WorksOverHTTP {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the running workers: namespace, host, pid, version, last heartbeat, running steps.",
        discussion: """
            Every Orcastra worker registers itself at start, beats with its heartbeats (every 10 s \
            by default) and removes itself at a clean exit. A worker not heard from for three \
            beats (at least 30 s) was killed or cut off from the database: it is stale, hidden \
            unless --all is given, and removed by an orchestrator a day after its last beat. \
            The last lines name namespaces where steps wait and no live worker serves them.

            Examples:
              orcastra worker list
              orcastra worker list --namespace billing --all
              orcastra worker list --json | jq -r '.workers[] | "\\(.host) \\(.pid)"'
            """
    )

    @Option(help: ArgumentHelp("Only workers of this namespace.", valueName: "namespace"))
    var namespace: String?

    @Flag(help: "Also list stale workers (killed, or cut off from the database), marked STALE.")
    var all = false

    @Flag(help: "Print JSON for scripts: {\"workers\": [...], \"unserved_namespaces\": [...]}.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        try CLI.validateNamespaceOption(namespace)
    }

    func run() async throws {
        let namespace = namespace
        let (registered, unserved) = try await CLI.withService(database) { try await $0.workers(namespace: namespace) }
        let shown = all ? registered : registered.filter { !$0.stale }
        if json {
            try CLI.printJSON(Listing(workers: shown, unservedNamespaces: unserved))
        } else {
            print(Self.render(shown, hiddenStale: registered.count - shown.count, unserved: unserved, namespace: namespace))
        }
    }

    struct Listing: Encodable {
        var workers: [WorkerInfo]
        var unservedNamespaces: [UnservedNamespace]
        enum CodingKeys: String, CodingKey { case workers, unservedNamespaces = "unserved_namespaces" }
    }

    static func render(_ workers: [WorkerInfo], hiddenStale: Int, unserved: [UnservedNamespace], namespace: String?) -> String {
        var lines: [String] = []
        let live = workers.filter { !$0.stale }
        if !workers.isEmpty {
            let rows = workers.map { worker in
                [worker.id, worker.namespace, worker.host, String(worker.pid), worker.version, CLI.time(worker.startedAt),
                 "\(CLI.duration(worker.secondsSinceLastSeen)) ago" + (worker.stale ? " STALE" : ""),
                 "\(worker.runningSteps)/\(worker.concurrency)"]
            }
            lines.append(CLI.table(["ID", "NAMESPACE", "HOST", "PID", "VERSION", "STARTED", "LAST HEARTBEAT", "RUNNING"], rows))
            lines.append("")
        }
        if live.isEmpty {
            // With --namespace and steps waiting there, the last line says it with the way out.
            if namespace == nil || unserved.isEmpty {
                lines.append(namespace.map { "No live worker serves namespace \($0)." } ?? "No live workers.")
            }
        } else {
            let namespaces = Set(live.map(\.namespace)).count
            lines.append("\(CLI.count(live.count, "live worker", "live workers")) in \(CLI.count(namespaces, "namespace", "namespaces")).")
        }
        let stale = workers.count - live.count
        if stale > 0 {
            lines.append("\(CLI.count(stale, "stale worker", "stale workers")) (killed, or cut off from the database) \(stale == 1 ? "leaves" : "leave") the list a day after \(stale == 1 ? "its" : "their") last heartbeat.")
        }
        if hiddenStale > 0 {
            lines.append("\(CLI.count(hiddenStale, "stale worker", "stale workers")) not shown (--all lists \(hiddenStale == 1 ? "it" : "them")).")
        }
        for gap in unserved {
            let waiting = gap.enqueuedSteps == 1 ? "1 step waits" : "\(gap.enqueuedSteps) steps wait"
            lines.append("No live worker serves namespace \(gap.namespace), where \(waiting): start one with `\(gap.startCommand)`.")
        }
        return lines.joined(separator: "\n")
    }
}
