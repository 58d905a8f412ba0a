import Foundation
import OrcastraPostgres
import OrcastraTesting
import Testing

/// The worker registry (issue 13): real `orcastra-worker` processes register themselves, beat and
/// leave; `orcastra worker list` shows them, marks killed ones stale, and `orcastra task show` says
/// when a step waits on a namespace no live worker serves.
@Suite(.timeLimit(.minutes(5))) struct WorkerRegistryTests {
    let orcastra = CommandLineTool("orcastra")

    func list(_ arguments: [String], _ url: String) async throws -> (status: Int32, json: [String: Any], output: String) {
        let run = try await orcastra.run(["worker", "list", "--json", "--database-url", url] + arguments)
        let json = (try? JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8))) as? [String: Any] ?? [:]
        return (run.status, json, run.output)
    }

    func workers(_ url: String, all: Bool = false) async throws -> [[String: Any]] {
        try await list(all ? ["--all"] : [], url).json["workers"] as? [[String: Any]] ?? []
    }

    static var hostname: String {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, 255)
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    @Test func aLiveWorkerIsListedWithWhatItRunsAndLeavesOnAGracefulExit() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register("""
            namespace: e2e
            name: slow
            version: 1.0.0
            steps:
              - {name: work, command: [sh, -c, "sleep 4; echo '{}'"]}
            """)
        // A 3 s lease: heartbeats, and so registry beats, every second.
        let worker = try cluster.worker(namespace: "e2e", ["--lease", "3s", "--concurrency", "4"])
        #expect(await waitUntil(within: .seconds(10)) { try await workers(cluster.url).count == 1 }, "\(cluster.logs)")
        let row = try #require(try await workers(cluster.url).first)
        #expect(row["namespace"] as? String == "e2e")
        #expect(row["host"] as? String == Self.hostname)
        #expect((row["pid"] as? NSNumber)?.int32Value == worker.pid)
        #expect(row["version"] as? String == "0.1.0")
        #expect((row["concurrency"] as? NSNumber)?.intValue == 4)
        #expect((row["running_steps"] as? NSNumber)?.intValue == 0)
        #expect(row["stale"] as? Bool == false)
        #expect((row["started_at"] as? String)?.hasSuffix("Z") == true)
        #expect((row["last_seen_at"] as? String)?.contains(".") == true, "milliseconds")
        let id = try #require(row["id"] as? String)

        // The beat carries the running steps; the id is the lease owner of the step transitions.
        let task = try await cluster.submit("e2e/slow")
        #expect(await waitUntil(within: .seconds(10)) {
            (try await workers(cluster.url).first?["running_steps"] as? NSNumber)?.intValue == 1
        }, "\(cluster.logs)")
        #expect(try await cluster.count("""
            SELECT count(*) FROM orcastra.step_transitions t JOIN orcastra.steps s ON s.id = t.step_id
            WHERE s.task_id = \(task) AND t.metadata ->> 'worker' = \(id)
            """) >= 1)

        let table = try await orcastra.run(["worker", "list", "--database-url", cluster.url])
        #expect(table.status == 0, "\(table.output)")
        #expect(table.standardOutput.contains("ID"), "\(table.output)")
        #expect(table.standardOutput.contains(id))
        #expect(table.standardOutput.contains("1/4"), "\(table.output)")
        #expect(table.standardOutput.contains("1 live worker"), "\(table.output)")

        worker.send(SIGTERM)
        #expect(await worker.wait(timeout: .seconds(15)) == 0, "\(cluster.logs)")
        #expect(try await workers(cluster.url, all: true).isEmpty, "a graceful exit removes the row")
        let empty = try await orcastra.run(["worker", "list", "--database-url", cluster.url])
        #expect(empty.standardOutput.hasPrefix("No live workers."), "\(empty.output)")
    }

    @Test func aKilledWorkerIsMarkedStaleAndPrunedByTheOrchestrator() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        let worker = try cluster.worker(namespace: "e2e")
        #expect(await waitUntil(within: .seconds(10)) { try await workers(cluster.url).count == 1 }, "\(cluster.logs)")
        worker.send(SIGKILL)
        _ = await worker.wait(timeout: .seconds(5))
        // Its last beat was 5 minutes ago, as far as anyone can tell.
        try await cluster.pool.query("UPDATE orcastra.workers SET last_seen_at = now() - interval '5 minutes'")

        let live = try await list([], cluster.url)
        #expect(live.status == 0)
        #expect((live.json["workers"] as? [Any])?.isEmpty == true, "\(live.output)")
        let all = try await workers(cluster.url, all: true)
        #expect(all.count == 1)
        #expect(all.first?["stale"] as? Bool == true)
        #expect((all.first?["pid"] as? NSNumber)?.int32Value == worker.pid)

        let table = try await orcastra.run(["worker", "list", "--database-url", cluster.url])
        #expect(table.standardOutput.contains("1 stale worker not shown (--all lists it)."), "\(table.output)")
        let marked = try await orcastra.run(["worker", "list", "--all", "--database-url", cluster.url])
        #expect(marked.standardOutput.contains("STALE"), "\(marked.output)")
        #expect(marked.standardOutput.contains("5m"), "\(marked.output)")

        // Stale for more than a day: the orchestrator's chores delete it.
        try await cluster.pool.query("UPDATE orcastra.workers SET last_seen_at = now() - interval '25 hours'")
        try cluster.orchestrator()
        #expect(await waitUntil(within: .seconds(15)) { try await workers(cluster.url, all: true).isEmpty }, "\(cluster.logs)")
    }

    @Test func aWorkerWhoseRowWentMissingRegistersAgainAndASharedIdIsWarnedAbout() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        let first = try cluster.worker(namespace: "e2e", ["--lease", "3s", "--worker-id", "twin"])
        #expect(await waitUntil(within: .seconds(10)) { try await workers(cluster.url).count == 1 }, "\(cluster.logs)")
        let started = try #require(try await workers(cluster.url).first?["started_at"] as? String)
        // Pruned while the process was stopped, say: the next beat finds no row and registers again.
        try await cluster.pool.query("DELETE FROM orcastra.workers")
        #expect(await waitUntil(within: .seconds(10)) { try await workers(cluster.url).count == 1 }, "\(cluster.logs)")
        #expect(try await workers(cluster.url).first?["started_at"] as? String == started, "it keeps its start time")
        #expect(first.log.contains("registering again"), "\(first.log)")

        // A second live process with the same --worker-id takes the row over, and says so.
        let second = try cluster.worker(namespace: "e2e", ["--lease", "3s", "--worker-id", "twin"])
        #expect(await waitUntil(within: .seconds(10)) { second.log.contains("another live worker") }, "\(cluster.logs)")
        #expect(second.log.contains("pid \(first.pid)"), "\(second.log)")
    }

    @Test func taskShowSaysWhenNoLiveWorkerServesAWaitingStep() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register("""
            namespace: e2e
            name: lonely
            version: 1.0.0
            steps:
              - {name: charge, handler: billing.charge, namespace: billing}
              - {name: mail, handler: mail.send, namespace: mail}
            """)
        let task = try await cluster.submit("e2e/lonely").uuidString.lowercased()
        let show = try await orcastra.run(["task", "show", task, "--database-url", cluster.url])
        #expect(show.status == 0, "\(show.output)")
        #expect(show.standardOutput.contains(
            "No live worker serves namespace billing (step charge waits): start one with `orcastra-worker --namespace billing`."), "\(show.output)")
        #expect(show.standardOutput.contains("No live worker serves namespace mail (step mail waits)"), "\(show.output)")

        // A worker in another language registers through SQL alone; it counts the same.
        try await cluster.pool.query("""
            SELECT orcastra.register_worker('py-host-1', 'billing', 'host', 1, 'py 1.0', 1, 10000)
            """)
        let served = try await orcastra.run(["task", "show", task, "--database-url", cluster.url])
        #expect(!served.standardOutput.contains("namespace billing"), "\(served.output)")
        #expect(served.standardOutput.contains("No live worker serves namespace mail"), "\(served.output)")
        let listed = try await list(["--namespace", "billing"], cluster.url)
        #expect((listed.json["workers"] as? [[String: Any]])?.first?["id"] as? String == "py-host-1", "\(listed.output)")
        let unserved = try await list([], cluster.url).json["unserved_namespaces"] as? [[String: Any]]
        #expect(unserved?.count == 1)
        #expect(unserved?.first?["namespace"] as? String == "mail")
        #expect((unserved?.first?["enqueued_steps"] as? NSNumber)?.intValue == 1)

        // Once it stops beating it no longer counts.
        try await cluster.pool.query("UPDATE orcastra.workers SET last_seen_at = now() - interval '1 minute'")
        let stale = try await orcastra.run(["task", "show", task, "--database-url", cluster.url])
        #expect(stale.standardOutput.contains("No live worker serves namespace billing"), "\(stale.output)")
    }

    @Test func aWorkerOfANamespaceNoTemplateUsesWarnsAndStillWorks() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        for (name, namespace) in [("a", "billing"), ("b", "ghost"), ("c", "hosts")] {
            try await cluster.register("""
                namespace: e2e
                name: \(name)
                version: 1.0.0
                steps:
                  - {name: only, handler: orcastra.noop, namespace: \(namespace)}
                """)
        }
        let ghosts = try cluster.worker(namespace: "ghosts")
        #expect(await waitUntil(within: .seconds(10)) {
            ghosts.log.contains("no registered template has steps in namespace ghosts")
        }, "\(cluster.logs)")
        #expect(ghosts.log.contains("namespaces in use: ghost, hosts, billing"), "\(ghosts.log)")
        // It still starts: a template registered later is served.
        try await cluster.register("""
            namespace: ghosts
            name: late
            version: 1.0.0
            steps:
              - {name: only, handler: orcastra.noop}
            """)
        let task = try await cluster.submit("ghosts/late")
        #expect(try await cluster.settled(task) == "complete", "\(cluster.logs)")

        let billing = try cluster.worker(namespace: "billing")
        #expect(await waitUntil(within: .seconds(10)) { try await workers(cluster.url).count == 2 }, "\(cluster.logs)")
        #expect(!billing.log.contains("no registered template"), "\(billing.log)")
    }

    @Test func workerIsACommandGroupThatStillRunsAWorkerByDefault() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register("""
            namespace: e2e
            name: one
            version: 1.0.0
            steps:
              - {name: only, handler: orcastra.noop}
            """)
        // `orcastra worker --namespace X`, as before: no subcommand named.
        try cluster.spawnTool("orcastra", ["worker", "--namespace", "e2e", "--poll-interval", "200ms"])
        let task = try await cluster.submit("e2e/one")
        #expect(try await cluster.settled(task) == "complete", "\(cluster.logs)")

        let help = try await orcastra.run(["worker", "--help"])
        #expect(help.standardOutput.contains("list"), "\(help.output)")
        let bad = try await orcastra.run(["worker", "list", "--namespace", "Billing", "--database-url", cluster.url])
        #expect(bad.status == 64, "\(bad.output)")
        #expect(bad.standardError.contains("--namespace 'Billing' is invalid"), "\(bad.output)")
        let unreachable = try await orcastra.run(["worker", "list", "--database-url", "postgresql://ops@127.0.0.1:1/prod?connect_timeout=2"])
        #expect(unreachable.status == 69, "\(unreachable.output)")
    }

    @Test func withoutTheRegistryTableWorkersStillWorkAndListSaysToMigrate() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        // A database migrated by an older Orcastra: no registry table, view or functions.
        for function in ["register_worker", "heartbeat_worker", "deregister_worker", "prune_workers", "step_namespaces", "worker_stale_after"] {
            try await cluster.pool.query("DROP FUNCTION orcastra.\(unescaped: function) CASCADE")
        }
        try await cluster.pool.query("DROP TABLE orcastra.workers CASCADE")
        try await cluster.register("""
            namespace: e2e
            name: one
            version: 1.0.0
            steps:
              - {name: only, handler: orcastra.noop}
            """)
        let worker = try cluster.worker(namespace: "e2e")
        let task = try await cluster.submit("e2e/one")
        #expect(try await cluster.settled(task) == "complete", "\(cluster.logs)")
        #expect(await waitUntil(within: .seconds(10)) { worker.log.contains("run `orcastra migrate`") }, "\(cluster.logs)")
        let listed = try await orcastra.run(["worker", "list", "--database-url", cluster.url])
        #expect(listed.status == 69, "\(listed.output)")
        #expect(listed.standardError.contains("orcastra migrate"), "\(listed.output)")
        worker.send(SIGTERM)
        #expect(await worker.wait(timeout: .seconds(10)) == 0, "\(cluster.logs)")
    }
}
