import Foundation
import OrcastraInvariants
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

/// `when:`/`trigger:`/`skipped` through the protocol functions, where operators, the clock and lease
/// expiry meet them (issue 19). Each test ends with the invariant checker.
@Suite(.timeLimit(.minutes(3))) struct ConditionProtocolTests {
    static let failing = """
        namespace: cond
        name: failing
        version: 1.0.0
        steps:
          - {name: parent, handler: cond.parent, retry: {max_attempts: 1}}
          - {name: strict, handler: cond.strict, depends_on: [parent]}
          - {name: always, handler: cond.always, depends_on: [parent], trigger: all_done}
        """

    static func claim(_ fixture: StoreFixture) async throws -> [(id: Int64, token: UUID, name: String)] {
        try await fixture.pool.query("SELECT * FROM orcastra.claim_steps('cond', 'test-worker', 10, 30000)").map {
            (try $0.decode("step_id"), try $0.decode("lease_token"), try $0.decode("step_name"))
        }
    }

    static func states(_ fixture: StoreFixture, _ task: UUID) async throws -> [String: String] {
        try await fixture.pool.query("SELECT name, state FROM orcastra.steps WHERE task_id = \(task)")
            .reduce(into: [:]) { $0[try $1.decode("name", as: String.self)] = try $1.decode("state", as: String.self) }
    }

    static func checkInvariants(_ fixture: StoreFixture) async throws {
        let violations = try await fixture.pool.withConnection { try await InvariantChecker(settleGrace: .zero).check(on: $0) }
        #expect(violations.isEmpty, "\(violations.map(\.description))")
    }

    /// all_done runs after a failure; an operator's retry of the failed parent then runs the
    /// all_success child, and the all_done child does not run twice; counts stay true throughout.
    @Test func allDoneAfterAFailureThenAnOperatorRetry() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.failing)
        let task = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "cond/failing"))).taskID
        let parent = try #require(try await Self.claim(fixture).first)
        _ = try await fixture.pool.query("SELECT * FROM orcastra.fail_steps(\([parent.id]), \([parent.token]), ARRAY['broke'], ARRAY[NULL]::bigint[])")
        #expect(try await Self.states(fixture, task) == ["parent": "error", "strict": "pending", "always": "enqueued"])
        let always = try #require(try await Self.claim(fixture).first)
        #expect(always.name == "always")
        _ = try await fixture.pool.query("SELECT * FROM orcastra.complete_steps(\([always.id]), \([always.token]), ARRAY['{}'::jsonb])")
        #expect(try await fixture.pool.query("SELECT state FROM orcastra.tasks WHERE id = \(task)").first!.decode("state", as: String.self) == "error")
        try await Self.checkInvariants(fixture)

        _ = try await fixture.pool.query("SELECT orcastra.retry_step(\(parent.id), 'operator')")
        let again = try #require(try await Self.claim(fixture).first)
        _ = try await fixture.pool.query("SELECT * FROM orcastra.complete_steps(\([again.id]), \([again.token]), ARRAY['{}'::jsonb])")
        #expect(try await Self.states(fixture, task) == ["parent": "complete", "strict": "enqueued", "always": "complete"])
        let strict = try #require(try await Self.claim(fixture).first)
        _ = try await fixture.pool.query("SELECT * FROM orcastra.complete_steps(\([strict.id]), \([strict.token]), ARRAY['{}'::jsonb])")
        #expect(try await fixture.pool.query("SELECT state FROM orcastra.tasks WHERE id = \(task)").first!.decode("state", as: String.self) == "complete")
        try await Self.checkInvariants(fixture)
    }

    /// A lease that expires on the last attempt puts the step in error: its all_done child runs.
    @Test func aLeaseLostForGoodReleasesAnAllDoneChild() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.failing)
        let task = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "cond/failing"))).taskID
        let parent = try #require(try await Self.claim(fixture).first)
        _ = try await fixture.pool.query("UPDATE orcastra.steps SET lease_expires_at = now() - interval '1 second' WHERE id = \(parent.id)")
        #expect(try await fixture.pool.query("SELECT orcastra.recover_expired_leases(10) AS n").first!.decode("n", as: Int.self) == 1)
        #expect(try await Self.states(fixture, task) == ["parent": "error", "strict": "pending", "always": "enqueued"])
        try await Self.checkInvariants(fixture)
    }

    /// A failed step resolved by hand lets its children decide as if it had completed.
    @Test func resolvingAFailedParentDecidesItsConditionalChild() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register("""
            namespace: cond
            name: resolved
            version: 1.0.0
            steps:
              - {name: parent, handler: cond.parent, retry: {max_attempts: 1}}
              - {name: big, handler: cond.big, depends_on: [parent], when: "$.parents.parent.n > 10"}
              - {name: small, handler: cond.small, depends_on: [parent], when: "$.parents.parent.n <= 10"}
            """)
        let task = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "cond/resolved"))).taskID
        let parent = try #require(try await Self.claim(fixture).first)
        _ = try await fixture.pool.query("SELECT * FROM orcastra.fail_steps(\([parent.id]), \([parent.token]), ARRAY['broke'], ARRAY[NULL]::bigint[])")
        _ = try await fixture.pool.query("SELECT orcastra.resolve_step(\(parent.id), '{\"n\": 3}'::jsonb, 'by hand')")
        #expect(try await Self.states(fixture, task) == ["parent": "resolved_manually", "big": "skipped", "small": "enqueued"])
        try await Self.checkInvariants(fixture)
    }

    /// A scheduled task decides its conditional roots when it starts, not when it is created.
    @Test func aScheduledTaskDecidesItsRootsWhenItStarts() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register("""
            namespace: cond
            name: scheduled
            version: 1.0.0
            steps:
              - {name: on, handler: cond.on, when: "$.context.mode == \\"on\\""}
              - {name: off, handler: cond.off, when: "$.context.mode == \\"off\\""}
              - {name: below_off, handler: cond.x, depends_on: [off]}
            """)
        let task = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "cond/scheduled"),
                                                                context: ["mode": "on"], runAt: Date().addingTimeInterval(3600))).taskID
        #expect(try await Self.states(fixture, task) == ["on": "pending", "off": "pending", "below_off": "pending"])
        // Its start time comes (moved rather than waited for: a loaded machine must not turn a
        // short wait into a start at creation).
        _ = try await fixture.pool.query("UPDATE orcastra.tasks SET run_at = now() - interval '1 second' WHERE id = \(task)")
        #expect(try await fixture.pool.query("SELECT orcastra.start_due_tasks(10) AS n").first!.decode("n", as: Int.self) == 1)
        #expect(try await Self.states(fixture, task) == ["on": "enqueued", "off": "skipped", "below_off": "skipped"])
        try await Self.checkInvariants(fixture)
    }

    /// PostgreSQL refuses, at registration, a `when` its jsonpath parser rejects — whatever the
    /// offline checker let through (here: a definition written without it).
    @Test func registrationRefusesAWhenPostgreSQLCannotParse() async throws {
        let fixture = try await StoreFixture()
        let error = await #expect(throws: PostgresError.self) {
            _ = try await fixture.pool.query("""
                INSERT INTO orcastra.templates (namespace, name, version, definition, source, content_hash, step_count)
                VALUES ('cond', 'bad', '1.0.0', '{"steps": [{"name": "a", "when": "$.x = 1"}]}', '', 'h', 1)
                """)
        }
        #expect(error?.sqlState == "42601", "\(String(describing: error))")
    }
}
