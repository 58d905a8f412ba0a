import Foundation
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

/// `TaskCreator.createBatch` (`orcastra.create_task_batch`): the HTTP API's group commit.
@Suite(.timeLimit(.minutes(3))) struct TaskBatchCreationTests {
    static let limited = """
        namespace: shop
        name: limited
        version: 1.0.0
        concurrency: {key: "$.context.customer", limit: 2}
        steps:
          - {name: a, handler: shop.a}
        """
    static let old = """
        namespace: shop
        name: old
        version: 1.0.0
        steps:
          - {name: a, handler: shop.a}
        """

    func checked(_ fixture: StoreFixture, _ reference: String, _ context: JSONValue,
                 key: String? = nil) async throws -> TaskCreator.CheckedSubmission {
        let reference = try TemplateReference(parsing: reference)
        return try TaskCreator.checked(TaskRequest(template: reference, context: context, idempotencyKey: key),
                                       from: try await fixture.registry.find(reference))
    }

    @Test("each entry gets its own outcome in one transaction; refused entries leave the others made")
    func ownOutcomes() async throws {
        let fixture = try await StoreFixture()
        defer { Task { await fixture.pool.shutdown() } }
        try await fixture.register(StoreFixture.diamond)
        try await fixture.register(Self.limited)
        try await fixture.register(Self.old)
        let stored = try await fixture.registry.find(TemplateReference(parsing: "shop/old@1.0.0"))
        _ = try await fixture.registry.deprecate(TemplateReference(parsing: "shop/old@1.0.0"), reason: "replaced")

        let outcomes = try await fixture.creator.createBatch([
            try await checked(fixture, "shop/diamond", ["order_id": 1]),
            try await checked(fixture, "shop/limited", ["other": 1]),           // no concurrency key: OR010
            try await checked(fixture, "shop/diamond", ["order_id": 2], key: "k"),
            try TaskCreator.checked(TaskRequest(template: TemplateReference(parsing: "shop/old@1.0.0")), from: stored),  // deprecated: OR004
            try await checked(fixture, "shop/diamond", ["order_id": 3], key: "k"), // the same key: the same task
            try await checked(fixture, "shop/limited", ["customer": "c1"]),
        ])
        #expect(outcomes.count == 6)
        func made(_ index: Int) -> TaskCreation? {
            if case .made(let creation) = outcomes[index] { return creation }
            Issue.record("entry \(index): \(outcomes[index])")
            return nil
        }
        func refusal(_ index: Int) -> StoreError? {
            if case .refused(let error) = outcomes[index] { return error }
            Issue.record("entry \(index) was not refused: \(outcomes[index])")
            return nil
        }
        let first = try #require(made(0)), keyed = try #require(made(2)), again = try #require(made(4)), limited = try #require(made(5))
        #expect(first.created && keyed.created && limited.created && first.templateReference == "shop/diamond@1.0.0")
        #expect(!again.created && again.taskID == keyed.taskID && again.contextDiffers)
        guard case .concurrencyKeyMissing? = refusal(1) else { Issue.record("\(outcomes[1])"); return }
        guard case .templateDeprecated(let reference, _, let reason, _)? = refusal(3) else { Issue.record("\(outcomes[3])"); return }
        #expect(reference == "shop/old@1.0.0" && reason == "replaced")

        // Three tasks, whole (4 steps each for the diamond), made in one transaction.
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks") == 3)
        #expect(try await fixture.count("SELECT count(DISTINCT created_at) FROM orcastra.tasks") == 1)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(keyed.taskID)") == 4)
        #expect(try await fixture.count("SELECT (context->>'order_id')::int FROM orcastra.tasks WHERE id = \(keyed.taskID)") == 2)
    }

    @Test("an error that is not a refusal fails the whole call, which then made nothing")
    func wholeFailure() async throws {
        let fixture = try await StoreFixture()
        defer { Task { await fixture.pool.shutdown() } }
        try await fixture.register(StoreFixture.diamond)
        let good = try await checked(fixture, "shop/diamond", ["order_id": 1])
        var broken = good
        broken.request.priority = Int(Int32.max) + 1  // out of range for integer: 22003, not create_task's refusal
        await #expect(throws: PostgresError.self) { _ = try await fixture.creator.createBatch([good, broken]) }
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks") == 0)
    }
}
