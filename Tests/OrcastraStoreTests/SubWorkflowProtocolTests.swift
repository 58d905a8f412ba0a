import Foundation
import OrcastraInvariants
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

/// `workflow:` steps through the SQL functions (issue 19): the child task made in the transaction
/// that makes the step ready, the step following its child (advance_subworkflows, the
/// orchestrator's chore, called here by hand), cancel cascades, the depth cap, references checked
/// at submission and registration, an operator's retry making a new child.
@Suite(.timeLimit(.minutes(3))) struct SubWorkflowProtocolTests {
    static let child = """
        namespace: kid
        name: child
        version: 1.0.0
        steps:
          - {name: a, handler: kid.a}
          - {name: b, handler: kid.b, depends_on: [a]}
          - {name: c, handler: kid.c, depends_on: [a]}
        """
    static let parent = """
        namespace: par
        name: parent
        version: 1.0.0
        steps:
          - {name: first, handler: par.first}
          - {name: sub, depends_on: [first], workflow: kid/child@1.0.0, timeout: 1m}
          - {name: last, handler: par.last, depends_on: [sub]}
        """

    static func fixture() async throws -> StoreFixture {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.child)
        try await fixture.register(Self.parent)
        return fixture
    }

    /// Claims and completes every claimable step of `namespace`, each with {"step": its name}.
    @discardableResult
    static func runAll(_ fixture: StoreFixture, _ namespace: String) async throws -> Int {
        try await fixture.count("""
            SELECT count(*) FROM (SELECT c.step_id, c.lease_token, c.step_name FROM orcastra.claim_steps(\(namespace), 'w', 100, 60000) c) x,
                 LATERAL orcastra.complete_steps(ARRAY[x.step_id], ARRAY[x.lease_token], ARRAY[jsonb_build_object('step', x.step_name)]) r
            """)
    }

    /// Claims one step of `namespace` and fails it for good.
    static func failOne(_ fixture: StoreFixture, _ namespace: String, error: String) async throws {
        _ = try await fixture.pool.query("""
            SELECT r.* FROM (SELECT c.step_id, c.lease_token FROM orcastra.claim_steps(\(namespace), 'w', 1, 60000) c) x,
                 LATERAL orcastra.fail_steps(ARRAY[x.step_id], ARRAY[x.lease_token], ARRAY[\(error)::text], ARRAY[NULL::bigint]) r
            """)
    }

    static func advance(_ fixture: StoreFixture) async throws -> Int {
        try await fixture.count("SELECT orcastra.advance_subworkflows(100)")
    }

    static func step(_ fixture: StoreFixture, _ task: UUID, _ name: String) async throws -> PostgresRow {
        try await fixture.pool.query("""
            SELECT s.id, s.state, s.state_reason, s.last_error, s.child_task_id, s.attempts, r.result::text AS result
            FROM orcastra.steps s LEFT JOIN orcastra.step_results r ON r.step_id = s.id
            WHERE s.task_id = \(task) AND s.name = \(name)
            """).first!
    }

    static func taskState(_ fixture: StoreFixture, _ task: UUID) async throws -> String {
        try await fixture.pool.query("SELECT state FROM orcastra.tasks WHERE id = \(task)").first!.decode("state")
    }

    static func expectInvariants(_ fixture: StoreFixture) async throws {
        let violations = try await fixture.pool.withConnection { try await InvariantChecker(settleGrace: .zero).check(on: $0) }
        #expect(violations.isEmpty, "\(violations.map(\.description))")
    }

    static func submit(_ fixture: StoreFixture, _ reference: String, context: JSONValue = [:]) async throws -> UUID {
        try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: reference), context: context)).taskID
    }

    @Test func theChildIsMadeWhenTheStepIsReadyAndTheStepCompletesWithItsLeafResults() async throws {
        let fixture = try await Self.fixture()
        let task = try await Self.submit(fixture, "par/parent", context: ["order": 7])
        #expect(try await Self.runAll(fixture, "par") == 1)

        // The completion of `first` made the child, in that transaction: no worker claims `sub`.
        let sub = try await Self.step(fixture, task, "sub")
        #expect(try sub.decode("state", as: String.self) == "in_progress")
        let childID = try #require(try sub.decode("child_task_id", as: UUID?.self))
        let child = try await fixture.pool.query("""
            SELECT state, context::text AS context, parent_task_id, parent_step_id, workflow_depth, timeout_ms FROM orcastra.tasks WHERE id = \(childID)
            """).first!
        #expect(try child.decode("state", as: String.self) == "in_progress")
        #expect(try child.decode("parent_task_id", as: UUID.self) == task)
        #expect(try child.decode("parent_step_id", as: Int64.self) == (try sub.decode("id", as: Int64.self)))
        #expect(try child.decode("workflow_depth", as: Int.self) == 1)
        // The step's timeout (1m) is the child's.
        #expect(try child.decode("timeout_ms", as: Int64.self) == 60_000)
        #expect(try JSONValue(parsing: try child.decode("context", as: String.self))
            == ["context": ["order": 7], "parents": ["first": ["step": "first"]]])
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.claim_steps('par', 'w', 10, 60000)") == 0)
        try await Self.expectInvariants(fixture)

        #expect(try await Self.runAll(fixture, "kid") == 1)
        #expect(try await Self.runAll(fixture, "kid") == 2)
        #expect(try await Self.taskState(fixture, childID) == "complete")
        #expect(try await Self.advance(fixture) == 1)
        let done = try await Self.step(fixture, task, "sub")
        #expect(try done.decode("state", as: String.self) == "complete")
        // The leaves b and c, by name; a has children, so it is not part of the result.
        #expect(try JSONValue(parsing: try done.decode("result", as: String.self)) == ["b": ["step": "b"], "c": ["step": "c"]])
        #expect(try await Self.runAll(fixture, "par") == 1)
        #expect(try await Self.taskState(fixture, task) == "complete")
        try await Self.expectInvariants(fixture)
    }

    @Test func aFailedChildFailsTheStepNamingTheChildAndARetryMakesANewChild() async throws {
        let fixture = try await Self.fixture()
        let task = try await Self.submit(fixture, "par/parent")
        try await Self.runAll(fixture, "par")
        let childID = try #require(try await Self.step(fixture, task, "sub").decode("child_task_id", as: UUID?.self))
        try await Self.failOne(fixture, "kid", error: "card declined")
        #expect(try await Self.taskState(fixture, childID) == "error")
        #expect(try await Self.advance(fixture) == 1)
        let failed = try await Self.step(fixture, task, "sub")
        #expect(try failed.decode("state", as: String.self) == "error")
        #expect(try failed.decode("last_error", as: String.self)
            == "sub-workflow task \(childID.uuidString.lowercased()) (kid/child@1.0.0) failed: a: card declined")
        #expect(try await Self.taskState(fixture, task) == "error")
        try await Self.expectInvariants(fixture)

        // The child cannot be retried by itself: its step is named instead.
        let stepID: Int64 = try failed.decode("id")
        let refused = await #expect(throws: PostgresError.self) { _ = try await fixture.pool.query("SELECT orcastra.retry_task(\(childID), 'again')") }
        #expect(refused?.sqlState == "OR002")
        #expect("\(refused.map { "\($0)" } ?? "")".contains("retry \(stepID)"))

        // Retrying the step makes a new child; the task runs again.
        #expect(try await fixture.pool.query("SELECT orcastra.retry_step(\(stepID), 'again') AS s").first!.decode("s", as: String.self) == "in_progress")
        let retried = try await Self.step(fixture, task, "sub")
        let second = try #require(try retried.decode("child_task_id", as: UUID?.self))
        #expect(second != childID)
        #expect(try retried.decode("attempts", as: Int.self) == 2)
        #expect(try await Self.taskState(fixture, task) == "in_progress")
        try await Self.expectInvariants(fixture)
    }

    @Test func cancellingTheParentCancelsTheChildInTheSameTransaction() async throws {
        let fixture = try await Self.fixture()
        let task = try await Self.submit(fixture, "par/parent")
        try await Self.runAll(fixture, "par")
        let childID = try #require(try await Self.step(fixture, task, "sub").decode("child_task_id", as: UUID?.self))
        try await Self.runAll(fixture, "kid")
        #expect(try await fixture.pool.query("SELECT orcastra.cancel_task(\(task), 'not needed') AS s").first!.decode("s", as: String.self) == "cancelled")
        #expect(try await Self.taskState(fixture, childID) == "cancelled")
        #expect(try await Self.step(fixture, task, "sub").decode("state", as: String.self) == "cancelled")
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(childID) AND state IN ('pending', 'enqueued')") == 0)
        #expect(try await Self.advance(fixture) == 0)
        try await Self.expectInvariants(fixture)
    }

    @Test func aChildCancelledAloneFailsItsStep() async throws {
        let fixture = try await Self.fixture()
        let task = try await Self.submit(fixture, "par/parent")
        try await Self.runAll(fixture, "par")
        let childID = try #require(try await Self.step(fixture, task, "sub").decode("child_task_id", as: UUID?.self))
        _ = try await fixture.pool.query("SELECT orcastra.cancel_task(\(childID), 'wrong order')")
        #expect(try await Self.advance(fixture) == 1)
        let failed = try await Self.step(fixture, task, "sub")
        #expect(try failed.decode("state", as: String.self) == "error")
        #expect(try failed.decode("last_error", as: String.self).hasSuffix("(kid/child@1.0.0) was cancelled: wrong order"))
        try await Self.expectInvariants(fixture)
    }

    @Test func aParentThatTimesOutHasItsChildCancelled() async throws {
        let fixture = try await Self.fixture()
        let task = try await Self.submit(fixture, "par/parent")
        try await Self.runAll(fixture, "par")
        let childID = try #require(try await Self.step(fixture, task, "sub").decode("child_task_id", as: UUID?.self))
        _ = try await fixture.pool.query("UPDATE orcastra.tasks SET timeout_ms = 1000, deadline_at = now() - interval '1 second' WHERE id = \(task)")
        #expect(try await fixture.count("SELECT orcastra.fail_overdue_tasks(10)") == 1)
        #expect(try await Self.step(fixture, task, "sub").decode("state", as: String.self) == "cancelled")
        #expect(try await fixture.count("SELECT orcastra.cancel_orphaned_subworkflows(10)") == 1)
        #expect(try await Self.taskState(fixture, childID) == "cancelled")
        try await Self.expectInvariants(fixture)
    }

    @Test func recursionStopsAtTheDepthLimitWithTheLimitNamed() async throws {
        let fixture = try await StoreFixture()
        // a calls b calls a: each template alone is fine, so registration refuses the second.
        try await fixture.register("""
            namespace: rec
            name: a
            version: 1.0.0
            steps:
              - {name: go, handler: rec.go}
            """)
        try await fixture.register("""
            namespace: rec
            name: b
            version: 1.0.0
            steps:
              - {name: deeper, workflow: rec/a}
            """)
        let refused = await #expect(throws: StoreError.self) {
            try await fixture.register("""
                namespace: rec
                name: a
                version: 2.0.0
                steps:
                  - name: deeper
                    workflow: rec/b@1.0.0
                """, file: "a.yaml")
        }
        #expect("\(refused.map { "\($0)" } ?? "")" == "a.yaml:6: step 'deeper' makes the sub-workflows recurse: rec/a@2.0.0 → rec/b@1.0.0 → rec/a@2.0.0; a task would start itself again until the depth limit. Nothing was registered: call another template, or break the chain.")
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.templates WHERE namespace = 'rec' AND name = 'a'") == 1)

        // A chain deeper than the limit (here 3, the setting) fails at the step that would go deeper.
        let chain: [String] = (0..<5).map { level in
            """
            namespace: deep
            name: l\(level)
            version: 1.0.0
            steps:
              - {name: s, \(level == 4 ? "handler: deep.s" : "workflow: deep/l\(level + 1)")}
            """
        }
        for yaml in chain.reversed() { try await fixture.register(yaml) }
        let root: UUID = try await fixture.pool.withConnection { connection in
            try await connection.executeSimple("SET orcastra.workflow_depth_limit = 3")
            let task: UUID = try await connection.queryRow("SELECT task_id FROM orcastra.create_task_by_name('deep', 'l0')").decode("task_id")
            try await connection.executeSimple("RESET orcastra.workflow_depth_limit")
            return task
        }
        let depths = try await fixture.pool.query("""
            WITH RECURSIVE tree AS (SELECT id, workflow_depth FROM orcastra.tasks WHERE id = \(root)
                                    UNION ALL SELECT t.id, t.workflow_depth FROM orcastra.tasks t JOIN tree ON t.parent_task_id = tree.id)
            SELECT max(workflow_depth) AS deepest, count(*) AS tasks FROM tree
            """).first!
        #expect(try depths.decode("deepest", as: Int.self) == 3)
        #expect(try depths.decode("tasks", as: Int.self) == 4)
        let deepest = try await fixture.pool.query("""
            SELECT s.state, s.last_error FROM orcastra.steps s JOIN orcastra.tasks t ON t.id = s.task_id WHERE t.workflow_depth = 3
            """).first!
        #expect(try deepest.decode("state", as: String.self) == "error")
        #expect(try deepest.decode("last_error", as: String.self)
            == "sub-workflow deep/l4 not started: it would nest 4 levels deep, and tasks nest at most 3 (setting orcastra.workflow_depth_limit); a chain of workflow: steps that calls itself never ends")
        // The failure climbs one level per round of the chore.
        for _ in 0..<3 { _ = try await Self.advance(fixture) }
        #expect(try await Self.taskState(fixture, root) == "error")
        try await Self.expectInvariants(fixture)
    }

    @Test func anUnknownTemplateIsRefusedAtSubmission() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register("""
            namespace: par
            name: lost
            version: 1.0.0
            steps:
              - {name: first, handler: par.first}
              - {name: refund, depends_on: [first], workflow: billing/refunds@1.2.0}
            """)
        let refused = await #expect(throws: StoreError.self) { _ = try await Self.submit(fixture, "par/lost") }
        #expect("\(refused.map { "\($0)" } ?? "")".hasPrefix("par/lost@1.0.0 cannot run: step refund calls billing/refunds@1.2.0 — no such template is registered; nothing was written."))
        let sql = await #expect(throws: PostgresError.self) {
            _ = try await fixture.pool.query("SELECT * FROM orcastra.create_task_by_name('par', 'lost')")
        }
        #expect(sql?.sqlState == "OR017")
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks") == 0)
    }

    @Test func onlyTheDatabaseNamesAParentStep() async throws {
        let fixture = try await Self.fixture()
        let task = try await Self.submit(fixture, "par/parent")
        let first: Int64 = try await Self.step(fixture, task, "first").decode("id")
        let refused = await #expect(throws: PostgresError.self) {
            _ = try await fixture.pool.query("SELECT * FROM orcastra.create_task_by_name('kid', 'child') c, orcastra.create_task(c.template_id, p_parent_step => \(first))")
        }
        #expect(refused?.sqlState == "OR018")
    }
}
