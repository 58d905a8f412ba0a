import Foundation
@_exported import class OrcastraDevDB.BackgroundProcess
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates

/// A database plus real `orcastra-orchestrator` and `orcastra-worker` processes, as in production,
/// for end-to-end tests. Processes are killed by `shutdown()`.
public final class ProcessCluster: @unchecked Sendable {
    public let url: String
    public let pool: PostgresPool
    public let creator: TaskCreator
    private var processes: [BackgroundProcess] = []
    private var isShutDown = false
    private let logFolder: String
    /// Added to every process's environment (e.g. `ORCASTRA_PREPARED_STATEMENTS=off` behind PgBouncer).
    private let environment: [String: String]

    /// On a fresh migrated database, or on `url` when given (e.g. a database of a cluster the test controls).
    /// Waits for the `ProcessGate`; `shutdown()` releases it, so call it on every path (a `defer`).
    /// `environment` is added to every process's; `preparedStatements: false` for the test's own
    /// pool too when the URL goes through PgBouncer in transaction mode.
    public init(url: String? = nil, environment: [String: String] = [:], preparedStatements: Bool = true) async throws {
        self.environment = environment
        try await ProcessGate.shared.acquire()
        do {
            if let url { self.url = url } else { self.url = try await TestDatabases.shared.makeDatabase() }
        } catch {
            await ProcessGate.shared.release()
            throw error
        }
        pool = PostgresPool(conninfo: self.url, maximumConnections: 4, preparedStatements: preparedStatements)
        creator = TaskCreator(pool: pool)
        logFolder = NSTemporaryDirectory() + "orcastra-e2e-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: logFolder, withIntermediateDirectories: true)
    }

    /// Starts an orchestrator process; with `role`, connected as that login role.
    @discardableResult
    public func orchestrator(_ arguments: [String] = ["--poll-interval", "200ms"], as role: String? = nil,
                             environment: [String: String] = [:]) throws -> BackgroundProcess {
        try spawn("orcastra-orchestrator", arguments + ["--log-level", "debug"], as: role, environment: environment)
    }

    /// Starts a worker process for `namespace`; with `role`, connected as that login role.
    @discardableResult
    public func worker(namespace: String = "e2e", _ arguments: [String] = [], as role: String? = nil,
                       environment: [String: String] = [:]) throws -> BackgroundProcess {
        try spawn("orcastra-worker", ["--namespace", namespace, "--poll-interval", "200ms", "--log-level", "debug"] + arguments,
                  as: role, environment: environment)
    }

    /// Starts any of the package's executables against the cluster's database.
    @discardableResult
    public func spawnTool(_ name: String, _ arguments: [String], as role: String? = nil) throws -> BackgroundProcess {
        try spawn(name, arguments, as: role)
    }

    /// The cluster's database as login role `role` (see `TestDatabases.conninfo(_:as:)`).
    public func url(as role: String?) -> String {
        guard let role else { return url }
        return TestDatabases.conninfo(url, as: role)
    }

    private func spawn(_ name: String, _ arguments: [String], as role: String? = nil,
                       environment: [String: String] = [:]) throws -> BackgroundProcess {
        let tool = CommandLineTool(name)
        let log = "\(logFolder)/\(name)-\(processes.count).log"
        let process = try BackgroundProcess(tool.path, arguments, environment: self.environment.merging(environment) { $1 }.merging(["ORCASTRA_DATABASE_URL": url(as: role)]) { $1 },
                                            logPath: log)
        processes.append(process)
        return process
    }

    /// Registers a template given as YAML text.
    public func register(_ yaml: String) async throws {
        let template = try TemplateParser.parse(yaml: yaml, file: "e2e.yaml")
        _ = try await TemplateRegistry(pool: pool).register(LoadedTemplate(file: "e2e.yaml", source: yaml, template: template))
    }

    public func submit(_ reference: String, context: JSONValue = .object([:])) async throws -> UUID {
        try await creator.create(TaskRequest(template: TemplateReference(parsing: reference), context: context)).taskID
    }

    /// Waits until the task is complete, cancelled or in error, and returns that state.
    public func settled(_ task: UUID, within limit: Duration = .seconds(30)) async throws -> String {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let state = try await taskState(task)
            if ["complete", "cancelled", "error", "resolved_manually"].contains(state) { return state }
            try await Task.sleep(for: .milliseconds(25))
        }
        return try await taskState(task)
    }

    public func taskState(_ task: UUID) async throws -> String {
        try await pool.query("SELECT state FROM orcastra.tasks WHERE id = \(task)").first!.decode("state")
    }

    /// name → state for every step of the task.
    public func steps(_ task: UUID) async throws -> [String: String] {
        var states: [String: String] = [:]
        for row in try await pool.query("SELECT name, state FROM orcastra.steps WHERE task_id = \(task)") {
            states[try row.decode("name")] = try row.decode("state")
        }
        return states
    }

    public func result(_ task: UUID, step: String) async throws -> JSONValue? {
        let rows = try await pool.query("""
            SELECT r.result FROM orcastra.step_results r JOIN orcastra.steps s ON s.id = r.step_id
            WHERE s.task_id = \(task) AND s.name = \(step)
            """)
        guard let row = rows.first else { return nil }
        return try JSONValue(parsing: try row.decode("result", as: String.self))
    }

    public func stepRow(_ task: UUID, step: String) async throws -> PostgresRow {
        try await pool.queryRowAny("SELECT * FROM orcastra.steps WHERE task_id = \(task) AND name = \(step)")
    }

    public func count(_ sql: SQL) async throws -> Int {
        try await pool.query(sql).first!.decode(at: 0, as: Int.self)
    }

    /// Logs of every process, for failure messages.
    public var logs: String {
        processes.map { "--- \($0.logPath)\n\($0.log.suffix(3000))" }.joined(separator: "\n")
    }

    public func shutdown() async {
        let wasRunning = !isShutDown
        isShutDown = true
        for process in processes { await process.stop() }
        await pool.shutdown()
        if wasRunning { await ProcessGate.shared.release() }
    }
}

extension PostgresPool {
    public func queryRowAny(_ sql: SQL) async throws -> PostgresRow {
        guard let row = try await query(sql).first else { throw PostgresError.noRows(statement: sql.text) }
        return row
    }
}
