import Foundation
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

/// The W3C traceparent every task is stored with (Migrations/0008_trace_context.sql,
/// functions/trace_context.sql; docs/tracing.md).
@Suite(.timeLimit(.minutes(5))) struct TraceContextTests {
    /// A traceparent create_task made: version 00, flags 01 (sampled).
    static func isNew(_ value: String?) -> Bool {
        guard let value else { return false }
        let parts = value.split(separator: "-", omittingEmptySubsequences: false)
        let hex = { (part: Substring) in part.allSatisfy { "0123456789abcdef".contains($0) } }
        return parts.count == 4 && parts[0] == "00" && parts[1].count == 32 && parts[2].count == 16 && parts[3] == "01"
            && parts.allSatisfy(hex)
    }

    static func traceparent(_ fixture: StoreFixture, _ task: UUID) async throws -> String? {
        try await fixture.pool.queryRowAny("SELECT traceparent FROM orcastra.tasks WHERE id = \(task)").decode("traceparent", as: String?.self)
    }

    @Test func aTaskKeepsTheCallersTraceparentLowercasedOrGetsANewTrace() async throws {
        let fixture = try await StoreFixture()
        defer { Task { await fixture.pool.shutdown() } }
        try await fixture.register(StoreFixture.diamond)
        let reference = try TemplateReference(parsing: "shop/diamond")
        let given = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01"
        let traced = try await fixture.creator.create(TaskRequest(template: reference, context: ["order_id": 1], traceparent: given))
        #expect(try await Self.traceparent(fixture, traced.taskID) == given.lowercased())

        let first = try await fixture.creator.create(TaskRequest(template: reference, context: ["order_id": 2]))
        let second = try await fixture.creator.create(TaskRequest(template: reference, context: ["order_id": 3]))
        let one = try #require(try await Self.traceparent(fixture, first.taskID))
        let other = try #require(try await Self.traceparent(fixture, second.taskID))
        #expect(Self.isNew(one), "\(one)")
        #expect(one.split(separator: "-")[1] != other.split(separator: "-")[1])

        // By name, and in bulk (schedules): the same rule.
        let byName = try await fixture.pool.queryRowAny("""
            SELECT task_id FROM orcastra.create_task_by_name('shop', 'diamond', p_context => '{"order_id": 4}', p_traceparent => \(given))
            """).decode("task_id", as: UUID.self)
        #expect(try await Self.traceparent(fixture, byName) == given.lowercased())
        let templateID = try await fixture.pool.queryRowAny("SELECT template_id FROM orcastra.tasks WHERE id = \(traced.taskID)").decode("template_id", as: Int64.self)
        let rows = try await fixture.pool.query("""
            SELECT n, task_id FROM orcastra.create_tasks(ARRAY[\(templateID), \(templateID)]::bigint[], ARRAY['{"order_id": 5}', '{"order_id": 6}']::jsonb[],
                                                         ARRAY[NULL, NULL]::text[], ARRAY[0, 0]::integer[], ARRAY[\(given), NULL]::text[])
            ORDER BY n
            """).rows.map { try $0.decode("task_id", as: UUID.self) }
        #expect(rows.count == 2)
        #expect(try await Self.traceparent(fixture, rows[0]) == given.lowercased())
        #expect(Self.isNew(try await Self.traceparent(fixture, rows[1])))
    }

    @Test("a malformed traceparent is refused with its own SQLSTATE in SQL, and before anything is sent by the client",
          arguments: ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", ""])
    func malformedIsRefused(_ value: String) async throws {
        let fixture = try await StoreFixture()
        defer { Task { await fixture.pool.shutdown() } }
        try await fixture.register(StoreFixture.diamond)
        let error = await #expect(throws: PostgresError.self) {
            _ = try await fixture.pool.query("""
                SELECT * FROM orcastra.create_task_by_name('shop', 'diamond', p_context => '{"order_id": 1}', p_traceparent => \(value))
                """)
        }
        #expect(error?.sqlState == "OR025")
        await #expect(throws: StoreError.self) {
            _ = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "shop/diamond"), context: ["order_id": 1],
                                                             traceparent: value))
        }
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks") == 0)
    }
}
