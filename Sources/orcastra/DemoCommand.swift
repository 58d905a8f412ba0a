import ArgumentParser
import Foundation
import OrcastraCommandLine
import OrcastraDevDB
import OrcastraMigrations
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates

/// `orcastra demo`: the whole system in one command, on a throwaway database.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run an example workflow end to end: database, orchestrator, worker, task.",
        discussion: """
            With no database configured it starts a throwaway local PostgreSQL (deleted afterwards); \
            otherwise it uses the configured one. It migrates, registers the example templates, \
            starts an orchestrator and a worker as separate processes, submits the example ETL \
            workflow, prints every step's state changes as they happen, and stops everything.

            Examples:
              orcastra demo
              orcastra demo --template examples/linear
            """
    )

    @Option(help: "The example to run.")
    var template = "examples/etl"

    @Option(help: "The task's context as JSON (default: sample orders for examples/etl).")
    var context: String?

    @Option(help: "The folder of templates to register (default: the bundled Templates/).")
    var templates: String?

    @Option(help: "The database to use instead of a throwaway one.")
    var databaseURL: String?

    func run() async throws {
        let started = ContinuousClock.now
        var cluster: LocalPostgres?
        let conninfo: String
        let environment = ProcessInfo.processInfo.environment
        let configured = [databaseURL, environment["ORCASTRA_DATABASE_URL"], environment["DATABASE_URL"]]
            .compactMap { $0 }.first { !$0.isEmpty }
        if let configured {
            conninfo = configured
            say("Using the configured database \(ConnectionAddress.describe(conninfo)).")
        } else {
            let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("orcastra-demo-\(getpid())")
            let local = try LocalPostgres(dataDirectory: directory, options: .init(durable: false, maxConnections: 50))
            say("Starting a throwaway PostgreSQL in \(directory.path) …")
            conninfo = try await local.start()
            cluster = local
        }
        var children: [BackgroundProcess] = []
        let logs = NSTemporaryDirectory() + "orcastra-demo-\(getpid())"
        do {
            try await prepare(conninfo)
            // This same binary, as `orcastra orchestrator` and `orcastra worker`: processes of their own.
            let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
            let environment = ["ORCASTRA_DATABASE_URL": conninfo]
            children.append(try BackgroundProcess(me, ["orchestrator", "--poll-interval", "200ms", "--log-level", "warning"],
                                                  environment: environment, logPath: logs + "-orchestrator.log"))
            children.append(try BackgroundProcess(me, ["worker", "--namespace", "examples", "--concurrency", "4", "--log-level", "warning"],
                                                  environment: environment, logPath: logs + "-worker.log"))
            say("Started an orchestrator (pid \(children[0].pid)) and a worker for namespace examples (pid \(children[1].pid)), each a process of its own.")
            let outcome = try await submitAndWatch(conninfo)
            for child in children { await Self.stopGracefully(child) }
            children.removeAll()
            if let cluster { try await cluster.destroy() }
            say("Stopped the worker, the orchestrator\(cluster == nil ? "" : " and the database"). Done in \(format(ContinuousClock.now - started)).")
            if outcome != "complete" {
                throw CLIFailure(message: "The demo task ended \(outcome). The processes' logs: \(logs)-*.log", exitCode: .failure)
            }
        } catch {
            for child in children { await child.stop() }
            if let cluster { try? await cluster.destroy() }
            throw error
        }
    }

    private func prepare(_ conninfo: String) async throws {
        let connection = try await PostgresConnection.connect(conninfo)
        let report = try await Migrator.bundled().migrate(on: connection)
        await connection.close()
        say("Migrated the schema (\(CLI.count(report.applied.count, "migration", "migrations")) applied).")
        let folder: String
        if let templates {
            folder = templates
        } else {
            let (found, searched) = BundledResources.directory(named: "Templates", environmentVariable: "ORCASTRA_TEMPLATES_DIR")
            guard let found else {
                throw CLIFailure(message: "The example Templates folder was not found (looked in \(searched.joined(separator: ", "))); pass --templates DIR.", exitCode: .notFound)
            }
            folder = found.path
        }
        let pool = PostgresPool(conninfo: conninfo, maximumConnections: 1)
        let registry = TemplateRegistry(pool: pool)
        for loaded in try TemplateLoader.load(path: folder) { _ = try await registry.register(loaded) }
        await pool.shutdown()
        say("Registered the templates in \(folder).")
    }

    /// Submits the task and prints each step transition as it happens; returns the task's final state.
    private func submitAndWatch(_ conninfo: String) async throws -> String {
        let pool = PostgresPool(conninfo: conninfo, maximumConnections: 2)
        defer { Task { await pool.shutdown() } }
        let contextValue: JSONValue
        if let context {
            contextValue = try JSONValue(parsing: context)
        } else if template.hasPrefix("examples/etl") {
            contextValue = try JSONValue(parsing: #"{"currency": "EUR", "orders": [{"id": 1, "region": "north", "amount": 120.5}, {"id": 2, "region": "south", "amount": 80}, {"id": 3, "region": "north", "amount": 42.25}, {"id": 4, "region": "east", "amount": 0}]}"#)
        } else {
            contextValue = .object([:])
        }
        let submitted = ContinuousClock.now
        let creation = try await TaskCreator(pool: pool).create(TaskRequest(template: TemplateReference(parsing: template), context: contextValue))
        say("Submitted \(creation.templateReference) as task \(creation.taskID.uuidString.lowercased()):")
        var seen: Int64 = 0
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            // The task's state is read first: transitions read after it include everything up to it.
            let task = try await pool.query("SELECT state, error FROM orcastra.tasks WHERE id = \(creation.taskID)").first!
            let state: String = try task.decode("state")
            seen = try await printTransitions(of: creation.taskID, after: seen, pool: pool)
            if ["complete", "error", "cancelled", "resolved_manually"].contains(state) {
                say("Task \(state) in \(format(ContinuousClock.now - submitted)).")
                if state == "complete" {
                    let last = try await pool.query("""
                        SELECT s.name, r.result FROM orcastra.steps s JOIN orcastra.step_results r ON r.step_id = s.id
                        WHERE s.task_id = \(creation.taskID) ORDER BY s.finished_at DESC, s.id DESC LIMIT 1
                        """)
                    if let row = last.first {
                        say("Result of \(try row.decode("name", as: String.self)): \(try row.decode("result", as: String.self))")
                    }
                } else if let error: String = try task.decode("error") {
                    say("Error: \(error)")
                }
                return state
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return "still running after 2 minutes"
    }

    /// Prints the task's step transitions after id `seen`, with their time since the task was created.
    private func printTransitions(of task: UUID, after seen: Int64, pool: PostgresPool) async throws -> Int64 {
        var last = seen
        let rows = try await pool.query("""
            SELECT t.id, s.name, t.to_state, t.attempt, t.reason,
                   (extract(epoch FROM t.created_at - k.created_at) * 1000)::float8 AS ms
            FROM orcastra.step_transitions t
            JOIN orcastra.steps s ON s.id = t.step_id JOIN orcastra.tasks k ON k.id = t.task_id
            WHERE t.task_id = \(task) AND t.id > \(seen) ORDER BY t.id
            """)
        for row in rows {
            last = try row.decode("id")
            let name: String = try row.decode("name")
            let state: String = try row.decode("to_state")
            let attempt: Int = try row.decode("attempt")
            let reason: String = try row.decode("reason")
            let elapsed = String(format: "%.1f ms", try row.decode("ms", as: Double.self))
            print("  \(elapsed.padded(9)) \(name.padded(12)) \(state.padded(18)) \(attempt > 0 ? "attempt \(attempt), " : "")\(reason)")
        }
        return last
    }

    private func say(_ line: String) { print(line) }

    private func format(_ duration: Duration) -> String {
        let ms = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        return ms < 1000 ? String(format: "%.0f ms", ms) : String(format: "%.2f s", ms / 1000)
    }
}

extension DemoCommand {
    /// SIGTERM (a graceful shutdown), then SIGKILL if it takes more than five seconds.
    static func stopGracefully(_ process: BackgroundProcess) async {
        process.send(SIGTERM)
        if await process.wait(timeout: .seconds(5)) == nil { await process.stop() }
    }
}

extension String {
    /// Pads to `width` without ever cutting the text short.
    fileprivate func padded(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
