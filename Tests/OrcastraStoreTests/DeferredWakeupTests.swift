import Foundation
import OrcastraPostgres
import OrcastraStateMachines
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

/// Issue 12, latency under load: PostgreSQL serializes the commits of transactions that sent a
/// NOTIFY, so a worker's report-and-refill transaction (`report_steps_then_claim`, then
/// `claim_steps`, one pipeline) notifies a namespace only when work is still queued there once it
/// has claimed. Every step enqueued is still either claimed by the transaction that enqueued it or
/// announced: these tests listen for both.
@Suite(.timeLimit(.minutes(3))) struct DeferredWakeupTests {
    typealias Claim = WorkerProtocolTests.Claim

    static func listen(_ fixture: StoreFixture, _ namespaces: [String]) async throws -> AsyncRecorder<PostgresListener.Event> {
        try await listen(fixture, channels: namespaces.map { ProtocolChannel.namespacePrefix + $0 })
    }

    static func listen(_ fixture: StoreFixture, channels: [String]) async throws -> AsyncRecorder<PostgresListener.Event> {
        let events = AsyncRecorder(PostgresListener(conninfo: fixture.pool.conninfo, channels: channels))
        #expect(await events.next(within: .seconds(10)) == .listening(reconnected: false))
        return events
    }

    /// A task of `WorkerProtocolTests.pair` whose first step is claimed, with a listener on
    /// `channels` that has already drained what the task's creation sent.
    static func pairWithFirstClaimed(listeningOn channels: [String])
        async throws -> (fixture: StoreFixture, events: AsyncRecorder<PostgresListener.Event>, task: UUID, first: [Claim]) {
        let fixture = try await StoreFixture()
        try await fixture.register(WorkerProtocolTests.pair)
        let events = try await listen(fixture, channels: channels)
        let task = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "proto/pair"))).taskID
        let first = try await WorkerProtocolTests.claim(fixture)
        await drained(events)
        return (fixture, events, task, first)
    }

    /// Drains what task creation sent, then says whether anything more comes within half a second.
    static func drained(_ events: AsyncRecorder<PostgresListener.Event>) async {
        while await events.next(within: .milliseconds(500)) != nil {}
    }

    /// Reports `done` as completed and claims up to `limit` in `namespace`, in one pipeline (one
    /// transaction) ending with `take_notifications`, as the Swift worker does; then, unless
    /// `send` is false, sends what it collected after the commit. Returns the steps claimed and
    /// the notifications collected.
    @discardableResult
    static func reportThenClaim(_ fixture: StoreFixture, _ done: [Claim], namespace: String, limit: Int,
                                send: Bool = true) async throws -> (claimed: [Int64], pending: String) {
        let results = try await fixture.pool.withConnection { connection in
            let replies = try await connection.pipeline([
                """
                SELECT * FROM orcastra.report_steps_then_claim(\(done.map(\.id)), \(done.map(\.token)),
                    array_fill('{}'::jsonb, ARRAY[\(done.count)::int]), array_fill(NULL::text, ARRAY[\(done.count)::int]),
                    array_fill(NULL::bigint, ARRAY[\(done.count)::int]))
                """,
                "SELECT * FROM orcastra.claim_steps(\(namespace), 'test-worker', \(limit)::int, 30000)",
                "SELECT orcastra.take_notifications() AS pending",
            ])
            let pending = try replies[2].first!.decode("pending", as: String.self)
            if send && !pending.isEmpty { try await connection.execute("SELECT orcastra.send_notifications(\(pending))") }
            return (replies, pending)
        }
        #expect(try results.0[0].rows.map { try $0.decode("outcome", as: String.self) } == done.map { _ in "completed" })
        return (try results.0[1].rows.map { try $0.decode("step_id", as: Int64.self) }, results.1)
    }

    @Test func aChildClaimedByTheTransactionThatReleasedItWakesNobody() async throws {
        let (fixture, events, _, first) = try await Self.pairWithFirstClaimed(listeningOn: [ProtocolChannel.namespacePrefix + "proto"])
        defer { events.cancel() }
        let claimed = try await Self.reportThenClaim(fixture, first, namespace: "proto", limit: 10).claimed
        #expect(claimed.count == 1, "the second step, released and claimed in one transaction")
        #expect(await events.next(within: .seconds(1)) == nil, "nobody needed waking")
        await fixture.pool.shutdown()
    }

    @Test func aReleasedChildLeftQueuedWakesItsNamespace() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(WorkerProtocolTests.pair)
        let events = try await Self.listen(fixture, ["proto"])
        defer { events.cancel() }
        for _ in 0..<2 { _ = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "proto/pair"))) }
        let firsts = try await WorkerProtocolTests.claim(fixture)
        #expect(firsts.count == 2)
        await Self.drained(events)
        // Two children released, one claimed: the other must be announced.
        #expect(try await Self.reportThenClaim(fixture, firsts, namespace: "proto", limit: 1).claimed.count == 1)
        #expect(await events.next(within: .seconds(10)) == .notification(channel: ProtocolChannel.namespacePrefix + "proto", payload: ""))
        #expect(try await WorkerProtocolTests.claim(fixture).count == 1)
        await fixture.pool.shutdown()
    }

    @Test func aChildOfAnotherNamespaceWakesItsNamespaceButNotTheClaimers() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.diamond)
        let events = try await Self.listen(fixture, ["shop", "billing"])
        defer { events.cancel() }
        _ = try await fixture.creator.create(TaskRequest(template: TemplateReference(parsing: "shop/diamond"), context: ["order_id": 1]))
        let start = try await WorkerProtocolTests.claim(fixture, namespace: "shop")
        #expect(start.count == 1)
        await Self.drained(events)
        // start → left (shop, claimed here) and right (billing, someone else's).
        #expect(try await Self.reportThenClaim(fixture, start, namespace: "shop", limit: 10).claimed.count == 1)
        #expect(await events.next(within: .seconds(10)) == .notification(channel: ProtocolChannel.namespacePrefix + "billing", payload: ""))
        #expect(await events.next(within: .seconds(1)) == nil, "shop's queue is empty: no wake-up for it")
        await fixture.pool.shutdown()
    }

    /// The transaction's notifications are not sent at its commit (which then takes no part in
    /// PostgreSQL's serialized notifying commits) but collected, and sent by `send_notifications`
    /// afterwards: a task's completion reaches a task-events listener only then.
    @Test func aReportAndClaimSendsItsNotificationsOnlyAfterItsCommit() async throws {
        let (fixture, events, task, first) = try await Self.pairWithFirstClaimed(listeningOn: [ProtocolChannel.taskEvents])
        defer { events.cancel() }
        let second = try await Self.reportThenClaim(fixture, first, namespace: "proto", limit: 10).claimed
        let claims = try await fixture.pool.query("SELECT lease_token FROM orcastra.steps WHERE id = \(second[0])")
        let last = [Claim(id: second[0], token: try claims.first!.decode("lease_token"), task: task)]
        // The task completes in this report: its event is collected, not sent at commit.
        let (_, pending) = try await Self.reportThenClaim(fixture, last, namespace: "proto", limit: 10, send: false)
        #expect(pending == "\(ProtocolChannel.taskEvents)\t\(task.uuidString.lowercased())\n")
        #expect(try await fixture.pool.query("SELECT state FROM orcastra.tasks WHERE id = \(task)").first!.decode("state", as: String.self) == "complete")
        #expect(await events.next(within: .seconds(1)) == nil, "nothing was sent at the commit")
        try await fixture.pool.query("SELECT orcastra.send_notifications(\(pending))")
        #expect(await events.next(within: .seconds(10)) == .notification(channel: ProtocolChannel.taskEvents, payload: task.uuidString.lowercased()))
        await fixture.pool.shutdown()
    }

    @Test func aReportWithoutAClaimStillWakesTheNamespace() async throws {
        let (fixture, events, _, first) = try await Self.pairWithFirstClaimed(listeningOn: [ProtocolChannel.namespacePrefix + "proto"])
        defer { events.cancel() }
        _ = try await fixture.pool.query("""
            SELECT * FROM orcastra.report_steps(\(first.map(\.id)), \(first.map(\.token)), ARRAY['{}']::jsonb[], ARRAY[NULL]::text[], ARRAY[NULL]::bigint[])
            """)
        #expect(await events.next(within: .seconds(10)) == .notification(channel: ProtocolChannel.namespacePrefix + "proto", payload: ""))
        await fixture.pool.shutdown()
    }
}
