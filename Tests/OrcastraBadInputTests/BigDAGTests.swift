import Foundation
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import Testing

/// The largest shapes Orcastra is tested with (docs/limits.md): 10,000 steps wide, 1,000 deep.
/// Each parses, registers and becomes a task in one statement; the times are printed.
@Suite(.timeLimit(.minutes(5))) struct BigDAGTests {
    /// `root`, then `width` steps that each depend on it, then `join` that depends on all of them.
    static func fan(width: Int) -> String {
        var yaml = "namespace: big\nname: wide\nversion: 1.0.0\nsteps:\n  - {name: root, handler: big.noop}\n"
        for index in 0..<width {
            yaml += "  - {name: m\(index), handler: big.noop, depends_on: [root]}\n"
        }
        yaml += "  - {name: join, handler: big.noop, depends_on: [\((0..<width).map { "m\($0)" }.joined(separator: ", "))]}\n"
        return yaml
    }

    /// s0 → s1 → … → s(count-1); with `cycle`, s0 also depends on the last step.
    static func chain(_ count: Int, name: String, cycle: Bool = false) -> String {
        var yaml = "namespace: big\nname: \(name)\nversion: 1.0.0\nsteps:\n"
        for index in 0..<count {
            let parent = index == 0 ? (cycle ? "s\(count - 1)" : nil) : "s\(index - 1)"
            yaml += "  - {name: s\(index), handler: big.noop\(parent.map { ", depends_on: [\($0)]" } ?? "")}\n"
        }
        return yaml
    }

    @Test func tenThousandStepsWide() async throws {
        try await parseRegisterCreate(Self.fan(width: 9_998), label: "10,000 steps (1 → 9,998 → 1)",
                                      steps: 10_000, edges: 19_996)
    }

    @Test func chainOfOneThousand() async throws {
        try await parseRegisterCreate(Self.chain(1_000, name: "deep"), label: "chain of 1,000", steps: 1_000, edges: 999)
    }

    @Test func tenThousandStepCycleIsReported() async throws {
        let yaml = Self.chain(10_000, name: "loop", cycle: true)
        let start = ContinuousClock.now
        do {
            _ = try TemplateParser.parse(yaml: yaml, file: "loop.yaml")
            Issue.record("a 10,000-step cycle was accepted")
        } catch {
            print("10,000-step cycle: refused in \(seconds(since: start)) with \(error.issues.count) issue(s), message \(error.issues.first?.message.count ?? 0) characters")
            #expect(error.issues.count == 1)
            let issue = try #require(error.issues.first)
            #expect(issue.message.contains("dependency cycle: s0 → s1 → s2"), "\(issue.message.prefix(300))")
            #expect(issue.path == "steps[0].depends_on[0]")
            #expect(issue.line == 5 && issue.column >= 1)
        }
        #expect(ContinuousClock.now - start < .seconds(60))
    }

    /// `template show` of a wide template: every line is padded to the widest parents column, so
    /// the output grows with width × steps (10,000 wide: 673 MB of text, 18 s in a debug build).
    @Test func renderingAWideTemplateStaysSmall() throws {
        let template = try TemplateParser.parse(yaml: Self.fan(width: 1_000), file: "wide.yaml")
        let start = ContinuousClock.now
        let rendered = template.renderDAG()
        print("renderDAG of 1,002 steps (1 → 1,000 → 1): \(rendered.utf8.count / 1024) KiB in \(seconds(since: start))")
        #expect(rendered.utf8.count < 1 << 20, "\(rendered.utf8.count) bytes")
    }

    /// What running `sql` in a transaction of its own cost the server, in measures that hold
    /// however loaded the machine is: the table rows it read (sequential scans and index fetches of
    /// Orcastra's tables, functions included; `perTable` says where, for a failure's message) and,
    /// when the server runs on this machine, the CPU seconds its backend spent.
    static func cost(in database: BadInputDatabase, _ sql: SQL) async throws
        -> (result: QueryResult, rows: Int, perTable: String, cpu: Duration?) {
        try await database.pool.withTransaction { connection in
            let backend = try await connection.query("SELECT pg_backend_pid()").first!.decode(at: 0, as: Int.self)
            // The backend's counts not yet sent to the statistics system, earlier transactions' included;
            // within one transaction they only grow.
            let rowsRead: SQL = """
                SELECT relname, seq_tup_read + coalesce(idx_tup_fetch, 0) AS read
                FROM pg_stat_xact_user_tables WHERE schemaname = 'orcastra'
                """
            func readings(_ rows: QueryResult) throws -> [String: Int] {
                Dictionary(uniqueKeysWithValues: try rows.map { (try $0.decode("relname", as: String.self), try $0.decode("read", as: Int.self)) })
            }
            let before = try readings(try await connection.query(rowsRead))
            let cpuBefore = backendCPU(pid: backend)
            let result = try await connection.query(sql)
            let cpuAfter = backendCPU(pid: backend)
            let counts = try readings(try await connection.query(rowsRead))
                .map { ($0.key, $0.value - before[$0.key, default: 0]) }.filter { $0.1 > 0 }.sorted { $0.1 > $1.1 }
            let cpu = cpuBefore.flatMap { before in cpuAfter.map { $0 - before } }
            return (result, counts.reduce(0) { $0 + $1.1 }, counts.map { "\($0.0) \($0.1)" }.joined(separator: ", "), cpu)
        }
    }

    /// CPU time spent so far by the client backends connected to the test's database (not an
    /// autovacuum worker that happens to start), when the server runs on this machine: the pool's
    /// connections stay open for the whole test.
    static func databaseCPU(_ database: BadInputDatabase) async throws -> Duration? {
        let pids = try await database.pool.query("""
            SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'
            """)
            .map { try $0.decode("pid", as: Int.self) }
        var total = Duration.zero
        for pid in pids {
            guard let cpu = backendCPU(pid: pid) else { return nil }
            total += cpu
        }
        return total
    }

    /// User plus system CPU time of a PostgreSQL backend on this machine (/proc/PID/stat), or nil
    /// when the server is elsewhere (DATABASE_URL, a container) and the pid is not a postgres process here.
    static func backendCPU(pid: Int) -> Duration? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")"), stat.contains("(postgres)") else { return nil }
        // After "pid (comm)": state is field 3; utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
        let ticks = sysconf(Int32(_SC_CLK_TCK))
        return .milliseconds((user + system) * 1000 / max(ticks, 1))
    }

    func parseRegisterCreate(_ yaml: String, label: String, steps: Int, edges: Int) async throws {
        let database = try await BadInputDatabase()
        defer { Task { [pool = database.pool] in await pool.shutdown() } }
        var clock = ContinuousClock.now
        let template = try TemplateParser.parse(yaml: yaml, file: "big.yaml")
        let parsed = seconds(since: clock)
        clock = ContinuousClock.now
        _ = try await database.registry.register(LoadedTemplate(file: "big.yaml", source: yaml, template: template))
        let registered = seconds(since: clock)
        clock = ContinuousClock.now
        let stored = try await database.registry.find(TemplateReference(namespace: template.namespace, name: template.name))
        let found = seconds(since: clock)
        clock = ContinuousClock.now
        let cpuBeforeCreation = try await Self.databaseCPU(database)
        let creation = try await database.creator.create(TaskRequest(template: TemplateReference(namespace: template.namespace, name: template.name)), from: stored)
        let created = seconds(since: clock)
        let creationCPU = try await Self.databaseCPU(database).flatMap { after in cpuBeforeCreation.map { after - $0 } }
        print("\(label): \(yaml.utf8.count / 1024) KiB of YAML; parse \(parsed), register \(registered), find \(found), create task \(created) (server CPU \(creationCPU.map { "\($0)" } ?? "not measured"))")
        #expect(template.steps.count == steps)
        #expect(stored.template == template)
        #expect(try await database.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(creation.taskID)") == steps)
        #expect(try await database.count("SELECT count(*) FROM orcastra.step_edges") == edges)
        #expect(try await database.count("SELECT count(*) FROM orcastra.step_transitions") == steps)
        // Only the root is ready; everything else waits for its parents.
        #expect(try await database.count("SELECT count(*) FROM orcastra.steps WHERE state = 'enqueued'") == 1)
        #expect(try await database.count("SELECT count(*) FROM orcastra.steps WHERE pending_parents = 0") == 1)
        // Linear in the steps: a nested loop over the template's steps (a plan without hash joins)
        // took 22 s for 10,000 steps, against half a second.
        // Measured in the server's CPU, not seconds (see the release below): 0.15 s here.
        #expect((creationCPU ?? .zero) < .seconds(6), "creating the task took \(creationCPU!) of the server's CPU")

        // The root's completion releases its children in one report; then up to 500 report at once.
        clock = ContinuousClock.now
        let root = try await database.pool.query("SELECT step_id, lease_token FROM orcastra.claim_steps('big', 'w', 1, 60000)")
        let rootID: Int64 = try root.first!.decode("step_id"), rootToken: UUID = try root.first!.decode("lease_token")
        let (_, releaseRowsRead, releaseTables, releaseCPU) = try await Self.cost(in: database, """
            SELECT * FROM orcastra.report_steps(\([rootID]), \([rootToken]), ARRAY['{}']::jsonb[], ARRAY[NULL]::text[], ARRAY[NULL]::bigint[])
            """)
        let releasing = seconds(since: clock), releaseTime = ContinuousClock.now - clock
        let chain = edges == steps - 1
        #expect(try await database.count("SELECT count(*) FROM orcastra.steps WHERE state = 'enqueued'") == (chain ? 1 : steps - 2))
        clock = ContinuousClock.now
        let batch = try await database.pool.query("SELECT step_id, lease_token FROM orcastra.claim_steps('big', 'w', 500, 60000)")
        let claiming = seconds(since: clock), claimTime = ContinuousClock.now - clock
        let ids: [Int64] = try batch.map { try $0.decode("step_id") }, tokens: [UUID] = try batch.map { try $0.decode("lease_token") }
        let results = [JSONText?](repeating: JSONText("{}"), count: ids.count)
        let (reported, reportRowsRead, reportTables, reportCPU) = try await Self.cost(in: database, """
            SELECT * FROM orcastra.report_steps(\(ids), \(tokens), \(results)::jsonb[], \([String?](repeating: nil, count: ids.count))::text[],
                                                \([Int64?](repeating: nil, count: ids.count))::bigint[])
            """)
        let reporting = seconds(since: clock)
        print("""
            \(label): root reported and children released in \(releasing) (server CPU \(releaseCPU.map { "\($0)" } ?? "not measured"), \
            \(releaseRowsRead) rows read); \(ids.count) steps claimed in \(claiming), claimed and reported in \(reporting) \
            (the report's server CPU \(reportCPU.map { "\($0)" } ?? "not measured"), \(reportRowsRead) rows read)
            """)
        #expect(reported.count == ids.count)
        // Linear in the task's steps, measured in work rather than seconds: the same release took
        // 0.5 s alone here, 1.2 s and 6.8 s in two CI runs and 23 s in a third (149 suites share two
        // cores). It reads 7 rows per child (70,000) in 0.4 s of the server's CPU; a plan
        // that revisits every child for each child reads 100 million, and one that loops over a
        // materialized set (no rows read) shows in the CPU: the report of 500 took 8 s with hash
        // joins and index scans turned off, against 0.05 s.
        #expect(releaseRowsRead < 20 * steps, "releasing \(steps - 2) children read \(releaseRowsRead) rows: \(releaseTables)")
        #expect(reportRowsRead < 20 * steps, "reporting \(ids.count) steps read \(reportRowsRead) rows: \(reportTables)")
        #expect((releaseCPU ?? .zero) < .seconds(4), "releasing \(steps - 2) children took \(releaseCPU!) of the server's CPU")
        #expect((reportCPU ?? .zero) < .seconds(4), "reporting \(ids.count) steps took \(reportCPU!) of the server's CPU")
        // The claim reads each claimed instance's template step once per fan-out group; it read the
        // whole template for every step claimed, fan-out or not: 500 × 10,000 rows, 4.6 s against
        // 0.05 s here, over 12 s in CI. Bounded by the release of 9,998 children measured just
        // before under the same load (0.11 × of it alone here, 0.35 × on CI's loaded cores, 11 ×
        // with the old claim), and never below 2 s: an absolute bound alone failed on CI's cores
        // (2.4 s for a claim that takes 0.05 s alone).
        #expect(claimTime < max(.seconds(2), releaseTime), "claiming 500 steps took \(claiming), releasing \(releasing)")
    }
}
