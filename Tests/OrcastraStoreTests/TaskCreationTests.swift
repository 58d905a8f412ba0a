import Foundation
import OrcastraPostgres
import OrcastraStateMachines
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

@Suite(.timeLimit(.minutes(5))) struct TaskCreationTests {
    @Test func createsTaskStepsEdgesAndAuditInOneGo() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.diamond)
        let creation = try await fixture.creator.create(TaskRequest(
            template: TemplateReference(parsing: "shop/diamond"), context: ["order_id": 42, "channel": "web"], priority: 5))
        #expect(creation.created)
        let id = creation.taskID
        let task = try await fixture.pool.query("SELECT state, priority, context->>'order_id' AS order_id, started_at IS NOT NULL AS started FROM orcastra.tasks WHERE id = \(id)").first!
        #expect(try task.decode("state", as: String.self) == "in_progress")
        #expect(try task.decode("priority", as: Int.self) == 5)
        #expect(try task.decode("order_id", as: String.self) == "42")
        #expect(try task.decode("started", as: Bool.self))

        let steps = try await fixture.pool.query("""
            SELECT name, namespace, state, pending_parents, max_attempts, priority FROM orcastra.steps WHERE task_id = \(id) ORDER BY id
            """).rows.map { row in
            "\(try row.decode("name", as: String.self)) \(try row.decode("namespace", as: String.self)) \(try row.decode("state", as: String.self)) \(try row.decode("pending_parents", as: Int.self)) \(try row.decode("max_attempts", as: Int.self)) \(try row.decode("priority", as: Int.self))"
        }
        #expect(steps == [
            "start shop enqueued 0 3 5",
            "left shop pending 1 3 5",
            "right billing pending 1 3 5",
            "join shop pending 2 7 5",
        ])
        let edges = try await fixture.pool.query("""
            SELECT p.name || '→' || c.name AS edge FROM orcastra.step_edges e
            JOIN orcastra.steps p ON p.id = e.parent_id JOIN orcastra.steps c ON c.id = e.child_id
            WHERE p.task_id = \(id) ORDER BY 1
            """).rows.map { try $0.decode("edge", as: String.self) }
        #expect(edges == ["left→join", "right→join", "start→left", "start→right"])
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.task_transitions WHERE task_id = \(id) AND from_state IS NULL AND to_state = 'in_progress'") == 1)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.step_transitions WHERE task_id = \(id) AND reason = 'created'") == 4)
        await fixture.pool.shutdown()
    }

    /// The rows of a task, as text to compare: steps, edges, audit rows.
    static func shape(_ fixture: StoreFixture, _ id: UUID) async throws -> [String] {
        let steps = try await fixture.pool.query("""
            SELECT name, namespace, state, pending_parents, max_attempts, priority, enqueued_at IS NOT NULL AS enqueued
            FROM orcastra.steps WHERE task_id = \(id) ORDER BY id
            """).rows.map { row in
            "\(try row.decode("name", as: String.self)) \(try row.decode("namespace", as: String.self)) \(try row.decode("state", as: String.self)) \(try row.decode("pending_parents", as: Int.self)) \(try row.decode("max_attempts", as: Int.self)) \(try row.decode("priority", as: Int.self)) \(try row.decode("enqueued", as: Bool.self))"
        }
        let edges = try await fixture.pool.query("""
            SELECT p.name || '→' || c.name AS edge FROM orcastra.step_edges e
            JOIN orcastra.steps p ON p.id = e.parent_id JOIN orcastra.steps c ON c.id = e.child_id
            WHERE p.task_id = \(id) ORDER BY 1
            """).rows.map { try $0.decode("edge", as: String.self) }
        let audit = try await fixture.pool.query("""
            SELECT (SELECT string_agg(coalesce(from_state, '-') || '>' || to_state || ' ' || reason, ', ' ORDER BY id) FROM orcastra.task_transitions WHERE task_id = \(id)) AS task,
                   (SELECT string_agg(s.name || ' ' || coalesce(t.from_state, '-') || '>' || t.to_state || ' ' || t.attempt || ' ' || t.reason, ', ' ORDER BY t.id)
                    FROM orcastra.step_transitions t JOIN orcastra.steps s ON s.id = t.step_id WHERE t.task_id = \(id)) AS steps,
                   (SELECT state || ' ' || priority || ' ' || context::text || ' ' || (started_at IS NOT NULL) FROM orcastra.tasks WHERE id = \(id)) AS task_row
            """).first!
        return steps + edges + [try audit.decode("task", as: String.self), try audit.decode("steps", as: String.self),
                                try audit.decode("task_row", as: String.self)]
    }

    /// create_tasks (set-based, for bulk callers such as schedule firing) makes exactly the rows
    /// create_task makes, and returns the task that holds a key instead of making another.
    @Test func createTasksMakesTheSameRowsAsCreateTask() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.diamond)
        let template = try await fixture.pool.query("SELECT id FROM orcastra.templates WHERE name = 'diamond'").first!.decode("id", as: Int64.self)
        let one = try await fixture.pool.query("""
            SELECT task_id FROM orcastra.create_task(\(template), '{"order_id": 1}', NULL, 5)
            """).first!.decode("task_id", as: UUID.self)
        let many = try await fixture.pool.query("""
            SELECT n, task_id, created FROM orcastra.create_tasks(ARRAY[\(template), \(template), \(template)],
                ARRAY['{"order_id": 1}', '{"order_id": 2}', '{"order_id": 3}']::jsonb[], ARRAY['a', NULL, 'b'], ARRAY[5, 5, 5])
            ORDER BY n
            """).rows
        #expect(many.count == 3)
        #expect(try many.map { try $0.decode("created", as: Bool.self) } == [true, true, true])
        let first = try many[0].decode("task_id", as: UUID.self)
        #expect(try await Self.shape(fixture, first) == (try await Self.shape(fixture, one)))
        // A key that exists returns its task; a new one makes a task, in the same call.
        let again = try await fixture.pool.query("""
            SELECT n, task_id, created FROM orcastra.create_tasks(ARRAY[\(template), \(template)], NULL, ARRAY['a', 'c'], NULL) ORDER BY n
            """).rows
        #expect(try again[0].decode("task_id", as: UUID.self) == first)
        #expect(try again[0].decode("created", as: Bool.self) == false)
        #expect(try again[1].decode("created", as: Bool.self) == true)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks") == 5)
        await fixture.pool.shutdown()
    }

    @Test func rootStepsWakeTheirNamespace() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.diamond)
        let listener = PostgresListener(conninfo: fixture.pool.conninfo, channels: [ProtocolChannel.namespacePrefix + "shop"])
        let events = AsyncRecorder(listener)
        defer { events.cancel() }
        #expect(await events.next(within: .seconds(10)) == .listening(reconnected: false))
        _ = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "shop/diamond"), context: ["order_id": 1]))
        #expect(await events.next(within: .seconds(10)) == .notification(channel: ProtocolChannel.namespacePrefix + "shop", payload: ""))
        listener.stop()
        await fixture.pool.shutdown()
    }

    @Test func idempotencyKeyReturnsTheExistingTask() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.diamond)
        let request = TaskRequest(template: try TemplateReference(parsing: "shop/diamond"), context: ["order_id": 7], idempotencyKey: "order-7")
        let first = try await fixture.creator.create(request)
        let second = try await fixture.creator.create(request)
        #expect(first.created && !second.created)
        #expect(first.taskID == second.taskID)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks") == 1)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps") == 4)
        await fixture.pool.shutdown()
    }

    /// Keys are unique per template (namespace/name, any version): the same key under another
    /// template makes its own task; a repeat returns the task with its own version and says
    /// whether the context given differs from the task's.
    @Test func idempotencyKeysBelongToOneTemplate() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.diamond)
        try await fixture.register(StoreFixture.diamond.replacingOccurrences(of: "version: 1.0.0", with: "version: 1.1.0"))
        try await fixture.register(StoreFixture.chain(2))
        let pinned = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "shop/diamond@1.0.0"),
                                                                  context: ["order_id": 7], idempotencyKey: "k"))
        #expect(pinned.created && pinned.templateReference == "shop/diamond@1.0.0" && !pinned.contextDiffers)
        let other = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "bench/chain"), idempotencyKey: "k"))
        #expect(other.created && other.taskID != pinned.taskID && other.templateReference == "bench/chain@1.0.0")

        let repeated = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "shop/diamond"),
                                                                    context: ["order_id": 7.0], idempotencyKey: "k"))
        #expect(!repeated.created && repeated.taskID == pinned.taskID)
        #expect(repeated.templateReference == "shop/diamond@1.0.0", "the task's own version, not the 1.1.0 asked for")
        #expect(!repeated.contextDiffers, "7.0 equals 7 as jsonb")
        let differs = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "shop/diamond"),
                                                                   context: ["order_id": 8], idempotencyKey: "k"))
        #expect(!differs.created && differs.taskID == pinned.taskID && differs.contextDiffers)

        // Through SQL alone, with the new result columns.
        let row = try #require(try await fixture.pool.query("""
            SELECT task_id, created, template_id, template_version, context_differs
            FROM orcastra.create_task_by_name('shop', 'diamond', p_context => '{"order_id": 9}', p_idempotency_key => 'k')
            """).first)
        #expect(try row.decode("task_id", as: UUID.self) == pinned.taskID)
        #expect(try row.decode("template_version", as: String.self) == "1.0.0")
        #expect(try row.decode("context_differs", as: Bool.self))
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks") == 2)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks WHERE idempotency_scope = 'shop/diamond' AND idempotency_key = 'k'") == 1)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks WHERE idempotency_key IS NULL AND idempotency_scope IS NOT NULL") == 0)
        await fixture.pool.shutdown()
    }

    /// A deprecated version makes no new task unless allowed, but a repeated key still returns its task.
    @Test func aDeprecatedVersionMakesNoNewTaskUnlessAllowed() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.diamond)
        try await fixture.register(StoreFixture.diamond.replacingOccurrences(of: "version: 1.0.0", with: "version: 1.1.0"))
        let old = try TemplateReference(parsing: "shop/diamond@1.0.0")
        let earlier = try await fixture.creator.create(TaskRequest(template: old, context: ["order_id": 1], idempotencyKey: "before"))
        _ = try await fixture.registry.deprecate(old, reason: "superseded")

        let refused = await #expect(throws: StoreError.self) {
            try await fixture.creator.create(TaskRequest(template: old, context: ["order_id": 1]))
        }
        #expect(refused.map { "\($0)" }?.contains("shop/diamond@1.0.0 is deprecated (since ") == true)
        #expect(refused.map { "\($0)" }?.contains(": superseded): new tasks are refused. Submit shop/diamond (it takes 1.1.0)") == true)
        let replay = try await fixture.creator.create(TaskRequest(template: old, context: ["order_id": 1], idempotencyKey: "before"))
        #expect(!replay.created && replay.taskID == earlier.taskID)
        let allowed = try await fixture.creator.create(TaskRequest(template: old, context: ["order_id": 1], allowDeprecated: true))
        #expect(allowed.created && allowed.templateReference == "shop/diamond@1.0.0")
        // allowDeprecated does nothing for a reference without a version.
        let unpinned = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "shop/diamond"),
                                                                    context: ["order_id": 1], allowDeprecated: true))
        #expect(unpinned.templateReference == "shop/diamond@1.1.0")

        let id = try await fixture.pool.query("SELECT id FROM orcastra.templates WHERE version = '1.0.0'").first!.decode("id", as: Int64.self)
        let bySQL = await #expect(throws: PostgresError.self) {
            try await fixture.pool.query("SELECT * FROM orcastra.create_task(\(id), '{}')")
        }
        #expect(bySQL?.sqlState == OrcastraSQLState.templateDeprecated.rawValue)
        #expect(try await fixture.pool.query("SELECT created FROM orcastra.create_task(\(id), '{}', p_allow_deprecated => true)").first!.decode("created", as: Bool.self))
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks") == 4)
        await fixture.pool.shutdown()
    }

    @Test func scheduledTaskWaitsPendingWithNothingEnqueued() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.diamond)
        let creation = try await fixture.creator.create(TaskRequest(
            template: TemplateReference(parsing: "shop/diamond"), context: ["order_id": 1], runAt: Date().addingTimeInterval(3600)))
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks WHERE id = \(creation.taskID) AND state = 'pending' AND run_at > now()") == 1)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(creation.taskID) AND state <> 'pending'") == 0)
        await fixture.pool.shutdown()
    }

    @Test func badContextOrUnknownTemplateCreatesNothing() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.diamond)
        let invalid = await #expect(throws: StoreError.self) {
            try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "shop/diamond"), context: ["channel": "fax"]))
        }
        let message = invalid.map { "\($0)" } ?? ""
        #expect(message.contains("context.order_id"), "\(message)")
        #expect(message.contains("context.channel"), "\(message)")
        await #expect(throws: StoreError.self) {
            try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "shop/diamond@9.9.9"), context: ["order_id": 1]))
        }
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks") == 0)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps") == 0)
        await fixture.pool.shutdown()
    }

    @Test func thousandStepTemplateIsOneStatement() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.chain(1000))
        let started = ContinuousClock.now
        let creation = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "bench/chain")))
        let elapsed = ContinuousClock.now - started
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(creation.taskID)") == 1000)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.step_edges e JOIN orcastra.steps s ON s.id = e.child_id WHERE s.task_id = \(creation.taskID)") == 999)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(creation.taskID) AND state = 'enqueued'") == 1)
        // Every row the creation wrote carries the same creating transaction id (xmin): one transaction.
        let id = creation.taskID
        #expect(try await fixture.count("""
            SELECT count(DISTINCT x) FROM (
                SELECT xmin::text AS x FROM orcastra.tasks WHERE id = \(id)
                UNION ALL SELECT xmin::text FROM orcastra.task_transitions WHERE task_id = \(id)
                UNION ALL SELECT xmin::text FROM orcastra.steps WHERE task_id = \(id)
                UNION ALL SELECT xmin::text FROM orcastra.step_transitions WHERE task_id = \(id)
                UNION ALL SELECT e.xmin::text FROM orcastra.step_edges e JOIN orcastra.steps s ON s.id = e.child_id WHERE s.task_id = \(id)
            ) AS writers
            """) == 1)
        print("1,000-step task created in \(elapsed)")
        // The statement alone, from a template fetched beforehand, five times: the fastest.
        let stored = try await fixture.registry.find(TemplateReference(parsing: "bench/chain"))
        var fastest = Duration.seconds(60)
        for _ in 0..<5 {
            let again = ContinuousClock.now
            _ = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "bench/chain")), from: stored)
            fastest = min(fastest, ContinuousClock.now - again)
        }
        print("1,000-step task created from a fetched template in \(fastest) (fastest of 5)")
        await fixture.pool.shutdown()
    }

    /// Other languages submit through SQL alone: by reference (the latest version by semver), with
    /// untyped literals, an idempotency key and a missing template.
    @Test func createTaskBySQLAlone() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.diamond)
        try await fixture.register(StoreFixture.diamond.replacingOccurrences(of: "version: 1.0.0", with: "version: 1.10.0"))
        try await fixture.register(StoreFixture.diamond.replacingOccurrences(of: "version: 1.0.0", with: "version: 1.9.0"))
        let row = try await fixture.pool.query("""
            SELECT task_id, created, state FROM orcastra.create_task_by_name('shop', 'diamond', p_context => '{"order_id": 3}',
                                                                     p_idempotency_key => 'sql-3', p_priority => 2)
            """).first!
        let id: UUID = try row.decode("task_id")
        #expect(try row.decode("created", as: Bool.self))
        #expect(try row.decode("state", as: String.self) == "in_progress")
        let version = try await fixture.pool.query("""
            SELECT v.version FROM orcastra.tasks t JOIN orcastra.templates v ON v.id = t.template_id WHERE t.id = \(id)
            """).first!
        #expect(try version.decode("version", as: String.self) == "1.10.0")
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(id) AND priority = 2") == 4)
        let again = try await fixture.pool.query("SELECT task_id, created FROM orcastra.create_task_by_name('shop', 'diamond', '1.0.0', '{}', 'sql-3')").first!
        #expect(try again.decode("task_id", as: UUID.self) == id)
        #expect(try !again.decode("created", as: Bool.self))
        let missing = await #expect(throws: PostgresError.self) {
            try await fixture.pool.query("SELECT * FROM orcastra.create_task_by_name('shop', 'diamond', '9.9.9')")
        }
        #expect(missing?.sqlState == OrcastraSQLState.templateNotFound.rawValue)
        #expect("\(missing.map { "\($0)" } ?? "")".contains("no template shop/diamond@9.9.9 is registered"))
        let byID = await #expect(throws: PostgresError.self) {
            try await fixture.pool.query("SELECT * FROM orcastra.create_task('424242', '{}', NULL, '0', NULL)")
        }
        #expect(byID?.sqlState == OrcastraSQLState.templateNotFound.rawValue)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks") == 1)
        await fixture.pool.shutdown()
    }

    /// orcastra.semver_key orders versions as `SemanticVersion` does, so SQL and Swift pick the same latest.
    @Test func semverKeyOrdersLikeSwift() async throws {
        let fixture = try await StoreFixture()
        let versions = ["1.0.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
                        "1.0.0-beta.11", "1.0.0-rc.1", "2.0.0", "1.10.0", "1.9.0", "1.0.0-a-b", "1.0.0-a", "1.0.0-A",
                        "1.0.0-0", "1.0.0-9", "1.0.0-10", "10.0.0-x.1", "0.0.1", "1.0.0-alpha.1.z"]
        let swiftOrder = try versions.map { try SemanticVersion(parsing: $0) }.sorted().map(\.description)
        let rows = try await fixture.pool.query("""
            SELECT v FROM unnest(\(versions)::text[]) AS v ORDER BY orcastra.semver_key(v)
            """)
        #expect(try rows.rows.map { try $0.decode("v", as: String.self) } == swiftOrder)
        await fixture.pool.shutdown()
    }

    /// Submission latency through `TaskCreator` (one pool, one client, a 4-step template fetched
    /// once): prints p50/p99. Set ORCASTRA_SUBMIT_SAMPLES (e.g. 500) to run it.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["ORCASTRA_SUBMIT_SAMPLES"] != nil))
    func submissionLatency() async throws {
        let samples = Int(ProcessInfo.processInfo.environment["ORCASTRA_SUBMIT_SAMPLES"] ?? "") ?? 500
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.chain(4, name: "four"))
        let stored = try await fixture.registry.find(TemplateReference(parsing: "bench/four"))
        let request = TaskRequest(template: try TemplateReference(parsing: "bench/four"), context: ["order_id": 1])
        for _ in 0..<50 { _ = try await fixture.creator.create(request, from: stored) }
        var fetched: [Duration] = [], reused: [Duration] = []
        for _ in 0..<samples {
            let started = ContinuousClock.now
            _ = try await fixture.creator.create(request, from: stored)
            reused.append(ContinuousClock.now - started)
            let again = ContinuousClock.now
            _ = try await fixture.creator.create(request)
            fetched.append(ContinuousClock.now - again)
        }
        func percentile(_ values: [Duration], _ p: Double) -> String {
            let sorted = values.sorted()
            let value = sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))].components
            let ms = Double(value.seconds) * 1000 + Double(value.attoseconds) / 1e15
            return String(format: "%.3f ms", ms)
        }
        print("submit 4-step (template reused), \(samples) samples: p50 \(percentile(reused, 0.5)), p99 \(percentile(reused, 0.99))")
        print("submit 4-step (template looked up), \(samples) samples: p50 \(percentile(fetched, 0.5)), p99 \(percentile(fetched, 0.99))")
        await fixture.pool.shutdown()
    }
}
