import Foundation
import OrcastraPostgres
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

    @Test func rootStepsWakeTheirNamespace() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.diamond)
        let listener = PostgresListener(conninfo: fixture.pool.conninfo, channels: ["orcastra_ns_shop"])
        let events = AsyncRecorder(listener)
        defer { events.cancel() }
        #expect(await events.next(within: .seconds(10)) == .listening(reconnected: false))
        _ = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "shop/diamond"), context: ["order_id": 1]))
        #expect(await events.next(within: .seconds(10)) == .notification(channel: "orcastra_ns_shop", payload: ""))
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
        await fixture.pool.shutdown()
    }
}
