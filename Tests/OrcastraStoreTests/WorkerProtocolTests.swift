import Foundation
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

/// The worker protocol's SQL functions called directly, as a worker in another language would:
/// the refusals and edge cases that issue 11 found in them.
@Suite(.timeLimit(.minutes(3))) struct WorkerProtocolTests {
    static let pair = """
        namespace: proto
        name: pair
        version: 1.0.0
        steps:
          - {name: first, handler: proto.first}
          - {name: second, handler: proto.second, depends_on: [first]}
        """

    struct Claim {
        var id: Int64
        var token: UUID
        var task: UUID
    }

    static func claim(_ fixture: StoreFixture, namespace: String = "proto", limit: Int = 10) async throws -> [Claim] {
        try await fixture.pool.query("SELECT * FROM orcastra.claim_steps(\(namespace), 'test-worker', \(limit)::int, 30000)").map {
            Claim(id: try $0.decode("step_id"), token: try $0.decode("lease_token"), task: try $0.decode("task_id"))
        }
    }

    static func stepState(_ fixture: StoreFixture, _ id: Int64) async throws -> String {
        try await fixture.pool.query("SELECT state FROM orcastra.steps WHERE id = \(id)").first!.decode("state")
    }

    @Test func aStepHandedBackAfterItsTaskWasCancelledIsCancelledNotRunAgain() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.pair)
        let task = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "proto/pair"))).taskID
        let claimed = try #require(try await Self.claim(fixture).first)
        #expect(try await fixture.pool.query("SELECT orcastra.cancel_task(\(task), 'operator') AS s").first!.decode("s", as: String.self) == "cancelled")
        _ = try await fixture.pool.query("SELECT * FROM orcastra.release_steps(\([claimed.id]), \([claimed.token]))")
        #expect(try await Self.stepState(fixture, claimed.id) == "cancelled")
        #expect(try await Self.claim(fixture).isEmpty)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(task) AND state IN ('enqueued', 'in_progress')") == 0)
    }

    @Test func aStepOfAScheduledTaskCannotBeResolvedBeforeTheTaskStarts() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.pair)
        let later = Date().addingTimeInterval(3600)
        let task = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "proto/pair"), runAt: later)).taskID
        let first: Int64 = try await fixture.pool.query("SELECT id FROM orcastra.steps WHERE task_id = \(task) AND name = 'first'").first!.decode("id")
        let error = await #expect(throws: PostgresError.self) {
            _ = try await fixture.pool.query("SELECT orcastra.resolve_step(\(first), '{}'::jsonb, 'by hand')")
        }
        #expect(error?.sqlState == "OR002")
        #expect("\(error.map { "\($0)" } ?? "")".contains("scheduled to start"))
        // The child did not move.
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(task) AND state = 'pending'") == 2)
    }

    @Test func aFailedStepOfACancelledTaskCannotBeResolved() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.pair)
        let task = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "proto/pair"))).taskID
        let claimed = try #require(try await Self.claim(fixture).first)
        // A permanent failure: the step is in error, and so is the task; then an operator cancels it.
        _ = try await fixture.pool.query("SELECT * FROM orcastra.fail_steps(\([claimed.id]), \([claimed.token]), ARRAY['broke'], ARRAY[NULL]::bigint[])")
        _ = try await fixture.pool.query("SELECT orcastra.cancel_task(\(task), 'operator')")
        let error = await #expect(throws: PostgresError.self) {
            _ = try await fixture.pool.query("SELECT orcastra.resolve_step(\(claimed.id), '{}'::jsonb, 'by hand')")
        }
        #expect(error?.sqlState == "OR002")
        #expect(try await Self.stepState(fixture, claimed.id) == "error")
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(task) AND state IN ('enqueued', 'in_progress')") == 0)
    }

    @Test func aStepReportedTwiceInOneCallCountsOnceWithItsCurrentLease() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.pair)
        let task = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "proto/pair"))).taskID
        let claimed = try #require(try await Self.claim(fixture).first)
        let stale = UUID()
        let rows = try await fixture.pool.query("""
            SELECT * FROM orcastra.report_steps(\([claimed.id, claimed.id]), \([stale, claimed.token]),
                ARRAY['{"n": 1}', '{"n": 2}']::jsonb[], ARRAY[NULL, NULL]::text[], ARRAY[NULL, NULL]::bigint[])
            """)
        #expect(rows.count == 1)
        #expect(try rows.first?.decode("outcome", as: String.self) == "completed")
        #expect(try await fixture.pool.query("SELECT result::text AS r FROM orcastra.step_results WHERE step_id = \(claimed.id)").first!.decode("r", as: String.self) == #"{"n": 2}"#)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(task) AND name = 'second' AND state = 'enqueued'") == 1)
    }

    @Test func successesAndFailuresOfOneBatchAreReportedInOneCall() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.pair)
        for _ in 0..<2 { _ = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "proto/pair"))) }
        let claimed = try await Self.claim(fixture)
        #expect(claimed.count == 2)
        let rows = try await fixture.pool.query("""
            SELECT * FROM orcastra.report_steps(\(claimed.map(\.id)), \(claimed.map(\.token)),
                ARRAY['{}', NULL]::jsonb[], ARRAY[NULL, 'broke']::text[], ARRAY[NULL, NULL]::bigint[])
            """)
        let outcomes = try Dictionary(uniqueKeysWithValues: rows.map { (try $0.decode("step_id", as: Int64.self), try $0.decode("outcome", as: String.self)) })
        #expect(outcomes == [claimed[0].id: "completed", claimed[1].id: "error"])
        #expect(try await fixture.pool.query("SELECT state FROM orcastra.tasks WHERE id = \(claimed[1].task)").first!.decode("state", as: String.self) == "error")
    }

    @Test func aRetryDelayLongerThanTwentyFiveDaysIsStored() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(Self.pair)
        _ = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "proto/pair")))
        let claimed = try #require(try await Self.claim(fixture).first)
        let thirtyDays: Int64 = 30 * 24 * 3_600_000  // above 2^31 ms
        let rows = try await fixture.pool.query("""
            SELECT * FROM orcastra.fail_steps(\([claimed.id]), \([claimed.token]), ARRAY['later'], \([Int64?.some(thirtyDays)]))
            """)
        #expect(try rows.first?.decode("outcome", as: String.self) == "waiting_for_retry")
        let days = try await fixture.pool.query("""
            SELECT extract(epoch FROM visible_at - now()) / 86400 AS d FROM orcastra.steps WHERE id = \(claimed.id)
            """).first!.decode("d", as: Double.self)
        #expect(abs(days - 30) < 0.01)
    }

    @Test func everyValidNamespaceHasAChannelOfItsOwnThatPostgreSQLAccepts() async throws {
        let fixture = try await StoreFixture()
        let long = String(repeating: "n", count: 40) + "-" + String(repeating: "a", count: 22)   // 63 characters
        let sibling = String(repeating: "n", count: 40) + "-" + String(repeating: "b", count: 22)
        #expect(long.count == TemplateNames.maximumLength)
        let channels = try await fixture.pool.query("""
            SELECT orcastra.namespace_channel(\(long)) AS a, orcastra.namespace_channel(\(sibling)) AS b,
                   orcastra.namespace_channel('examples') AS short
            """).first!
        let a: String = try channels.decode("a"), b: String = try channels.decode("b")
        #expect(a.utf8.count <= 63 && b.utf8.count <= 63)
        #expect(a != b)
        #expect(try channels.decode("short", as: String.self) == "orcastra_ns_examples")
        // A root step in that namespace: submission notifies its channel, claiming works.
        try await fixture.register("""
            namespace: \(long)
            name: long
            version: 1.0.0
            steps:
              - {name: only, handler: orcastra.noop}
            """)
        let task = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "\(long)/long"))).taskID
        let claimed = try await Self.claim(fixture, namespace: long)
        #expect(claimed.map(\.task) == [task])
        let rows = try await fixture.pool.query("""
            SELECT * FROM orcastra.complete_steps(\(claimed.map(\.id)), \(claimed.map(\.token)), ARRAY['{}']::jsonb[])
            """)
        #expect(try rows.first?.decode("task_state", as: String?.self) == "complete")
    }
}
