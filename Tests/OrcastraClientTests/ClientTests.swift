import Foundation
import OrcastraClient
import OrcastraPostgres
import OrcastraStateMachines
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Synchronization
import Testing

@Suite(.timeLimit(.minutes(5))) struct ClientTests {
    @Test func submitThenReadTheWholeDAG() async throws {
        let fixture = try await ClientFixture()
        let id = try await fixture.submit("shop/diamond", ["order_id": 42], key: "order-42")
        let detail = try await fixture.client.task(id)
        #expect(detail.template == "shop/diamond@1.0.0")
        #expect(detail.templateNamespace == "shop")
        #expect(detail.state == .inProgress)
        #expect(detail.context == ["order_id": 42])
        #expect(detail.idempotencyKey == "order-42")
        #expect(detail.startedAt != nil && detail.finishedAt == nil)
        #expect(detail.steps.map(\.name) == ["start", "left", "right", "join"])
        #expect(detail.steps.map(\.state) == [.enqueued, .pending, .pending, .pending])
        #expect(detail.steps.map(\.dependsOn) == [[], ["start"], ["start"], ["left", "right"]])
        #expect(detail.steps.allSatisfy { $0.attempts == 0 && $0.result == nil && $0.namespace == "shop" })
        #expect(!detail.isSettled)

        // The same key returns the same task.
        let again = try await fixture.client.submit(TaskRequest(template: TemplateReference(namespace: "shop", name: "diamond"),
                                                                context: ["order_id": 42], idempotencyKey: "order-42"))
        #expect(again.taskID == id && !again.created)
    }

    struct Order: Encodable { var orderID: Int; enum CodingKeys: String, CodingKey { case orderID = "order_id" } }

    @Test func submitWithAnEncodableContext() async throws {
        let fixture = try await ClientFixture()
        let creation = try await fixture.client.submit(TemplateReference(namespace: "shop", name: "diamond"), context: Order(orderID: 7), priority: 5)
        let detail = try await fixture.client.task(creation.taskID)
        #expect(detail.context == ["order_id": 7])
        #expect(detail.priority == 5)
    }

    @Test func submitRefusesAContextThatFailsTheSchema() async throws {
        let fixture = try await ClientFixture()
        await #expect(throws: StoreError.self) { _ = try await fixture.submit("shop/diamond", ["order_id": "x"]) }
    }

    @Test func unknownTaskIsNotFoundEverywhere() async throws {
        let fixture = try await ClientFixture()
        let id = UUID()
        for operation in ["task", "events", "cancel"] {
            do {
                switch operation {
                case "task": _ = try await fixture.client.task(id)
                case "events": _ = try await fixture.client.events(id)
                default: try await fixture.client.cancel(id)
                }
                Issue.record("\(operation) of an unknown task did not throw")
            } catch let error as StoreError {
                guard case .taskNotFound(let text) = error else { Issue.record("\(error)"); continue }
                #expect(text == id.uuidString.lowercased())
            }
        }
    }

    @Test func listFiltersAndPagesWithoutGapsOrRepeats() async throws {
        let fixture = try await ClientFixture()
        var shop: [UUID] = []
        for index in 0..<5 { shop.append(try await fixture.submit("shop/diamond", ["order_id": .integer(Int64(index))])) }
        let single = try await fixture.submit("shop/single")
        let billing = try await fixture.submit("billing/invoice")
        try await fixture.client.cancel(shop[1])
        let all = try await fixture.client.tasks(filter: TaskFilter())
        #expect(all.map(\.id) == [billing, single] + shop.reversed())
        #expect(all.first?.stepCount == 2 && all.first?.finishedStepCount == 0)

        #expect(try await fixture.client.tasks(filter: TaskFilter(namespace: "billing")).map(\.id) == [billing])
        #expect(try await fixture.client.tasks(filter: TaskFilter(namespace: "shop", templateName: "diamond")).count == 5)
        #expect(try await fixture.client.tasks(filter: TaskFilter(states: [.cancelled])).map(\.id) == [shop[1]])
        #expect(try await fixture.client.tasks(filter: TaskFilter(states: [.cancelled, .inProgress])).count == 7)

        // Time filters: everything is created after an hour ago, nothing before it.
        let hourAgo = Date().addingTimeInterval(-3600)
        #expect(try await fixture.client.tasks(filter: TaskFilter(createdAfter: hourAgo)).count == 7)
        #expect(try await fixture.client.tasks(filter: TaskFilter(createdBefore: hourAgo)).isEmpty)

        // Pages of two walk the listing exactly once.
        var seen: [UUID] = []
        var cursor: TaskCursor?
        repeat {
            let page = try await fixture.client.tasks(filter: TaskFilter(limit: 2, after: cursor))
            #expect(page.count <= 2)
            seen += page.map(\.id)
            cursor = page.count == 2 ? page.last?.cursor : nil
        } while cursor != nil
        #expect(seen == all.map(\.id))

        // Cursors survive their text form.
        let text = all[3].cursor.description
        #expect(TaskCursor(text) == all[3].cursor)
        #expect(TaskCursor("garbage") == nil)
    }

    @Test func cancelCancelsWaitingStepsAndIsIdempotent() async throws {
        let fixture = try await ClientFixture()
        let id = try await fixture.submit("shop/diamond", ["order_id": 1])
        #expect(try await fixture.client.cancel(id, reason: "test says so") == .cancelled)
        let detail = try await fixture.client.task(id)
        #expect(detail.state == .cancelled && detail.stateReason == "test says so")
        #expect(detail.steps.allSatisfy { $0.state == .cancelled })
        #expect(detail.isTerminal && detail.isSettled)
        #expect(try await fixture.client.cancel(id) == .cancelled)

        // A completed task stays complete.
        let done = try await fixture.submit("shop/single")
        try await fixture.complete(done, "only", namespace: "shop")
        #expect(try await fixture.client.cancel(done) == .complete)
    }

    @Test func eventsMergeTaskAndStepTransitionsInOrder() async throws {
        let fixture = try await ClientFixture()
        let id = try await fixture.submit("shop/diamond", ["order_id": 1])
        try await fixture.fail(id, "start", error: "card declined")
        let events = try await fixture.client.events(id)
        #expect(events.first?.kind == .task && events.first?.from == nil && events.first?.to == "in_progress")
        #expect(events.prefix(5).filter { $0.kind == .step }.map(\.stepName) == ["start", "left", "right", "join"])
        let moves = events.dropFirst(5).map { "\($0.kind.rawValue) \($0.stepName ?? "-") \($0.from ?? "∅")→\($0.to)" }
        #expect(moves == ["step start enqueued→in_progress", "step start in_progress→error", "task - in_progress→error"])
        #expect(events.last?.reason == "1 step failed; nothing else can run")
        #expect(events.dropFirst(5).first?.attempt == 1)
        #expect(zip(events.dropFirst(5), events.dropFirst(6)).allSatisfy { $0.time <= $1.time })
    }

    @Test func retryPutsAFailedStepBackInLine() async throws {
        let fixture = try await ClientFixture()
        let id = try await fixture.submit("shop/diamond", ["order_id": 1])
        try await fixture.fail(id, "start")
        let failed = try await fixture.client.task(id)
        #expect(failed.state == .error && failed.isSettled && !failed.isTerminal)
        #expect(failed.error == "start: boom")
        let step = try #require(failed.failedSteps.first)
        #expect(step.lastError == "boom" && step.attempts == 1)

        #expect(try await fixture.client.retryStep(step.id) == .enqueued)
        let retried = try await fixture.client.task(id)
        #expect(retried.state == .inProgress)
        #expect(retried.steps[0].state == .enqueued)
        #expect(retried.steps[0].maxAttempts > step.maxAttempts)

        await #expect(throws: ClientError.stepActionRefused(step: step.id, action: .retry,
                                                           reason: "step \(step.id) is enqueued, not error: only a failed step can be retried")) {
            try await fixture.client.retryStep(step.id)
        }
        await #expect(throws: ClientError.stepNotFound(987_654)) { try await fixture.client.retryStep(987_654) }
    }

    @Test func resolveReleasesTheChildren() async throws {
        let fixture = try await ClientFixture()
        let id = try await fixture.submit("shop/diamond", ["order_id": 1])
        try await fixture.fail(id, "start")
        let start = try await fixture.stepID(id, "start")
        #expect(try await fixture.client.resolveStep(start, result: ["charged": true]) == .resolvedManually)
        let detail = try await fixture.client.task(id)
        #expect(detail.state == .inProgress)
        #expect(detail.steps.map(\.state) == [.resolvedManually, .enqueued, .enqueued, .pending])
        #expect(detail.steps[0].result == ["charged": true])
        #expect(detail.finishedStepCount == 1)

        do {
            try await fixture.client.resolveStep(start, result: nil)
            Issue.record("resolving twice did not throw")
        } catch let error as ClientError {
            #expect("\(error)".hasPrefix("Cannot resolve step \(start): step \(start) is resolved_manually"))
        }
        await #expect(throws: ClientError.stepNotFound(987_654)) { try await fixture.client.resolveStep(987_654, result: nil) }
    }

    @Test func waitReturnsWhenAnotherConnectionCompletesTheTask() async throws {
        let fixture = try await ClientFixture()
        let id = try await fixture.submit("shop/single")
        let snapshots = SnapshotLog()
        async let finished = fixture.client.waitForCompletion(id, timeout: .seconds(30)) { snapshots.append($0) }
        try await Task.sleep(for: .milliseconds(300))
        try await fixture.complete(id, "only", namespace: "shop", result: #"{"n": 1}"#)
        let detail = try await finished
        #expect(detail.state == .complete)
        #expect(detail.steps[0].result == ["n": 1])
        #expect(snapshots.states.first == .inProgress)
        #expect(snapshots.states.last == .complete)
    }

    @Test func waitIsWokenByANotificationNotByPolling() async throws {
        let fixture = try await ClientFixture()
        let id = try await fixture.submit("shop/single")
        let clock = ContinuousClock()
        // A poll interval longer than the wait's own timeout: only the NOTIFY that the task's state
        // change sends can wake the watcher before it times out.
        async let finished = fixture.client.waitForCompletion(id, timeout: .seconds(20), pollInterval: .seconds(60))
        // Wait until the watcher's LISTEN is in force (its connection has run it and gone idle), and a
        // little more so its own first re-read after LISTEN is over; from then on nothing but a
        // notification (or the timeout) wakes it.
        let listening = await waitUntil(within: .seconds(10)) {
            try await fixture.pool.query("""
                SELECT count(*) FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle'
                  AND query LIKE 'LISTEN %' AND query LIKE \("%\(OrcastraClient.taskEventsChannel)%")
                """).first!.decode(at: 0, as: Int.self) == 1
        }
        #expect(listening, "the watcher never started listening")
        try await Task.sleep(for: .milliseconds(300))
        // A real state change, on another connection; the database's trigger sends the NOTIFY.
        let completedAt = clock.now
        try await fixture.complete(id, "only", namespace: "shop")
        let detail = try await finished
        let woke = clock.now - completedAt
        #expect(detail.state == .complete)
        // Well under the 20 s timeout and the 60 s poll; loose enough for a busy machine (3.04 s seen in CI
        // while another build ran).
        #expect(woke < .seconds(10), "woken \(woke) after the change: by the timeout, not by a notification")
    }

    @Test func waitStopsAtErrorAndTimesOut() async throws {
        let fixture = try await ClientFixture()
        let failing = try await fixture.submit("shop/single")
        try await fixture.fail(failing, "only")
        let detail = try await fixture.client.waitForCompletion(failing, timeout: .seconds(5))
        #expect(detail.state == .error)

        let running = try await fixture.submit("shop/single")
        let clock = ContinuousClock()
        let start = clock.now
        await #expect(throws: ClientError.waitTimedOut(task: running, after: .milliseconds(400), state: "in_progress")) {
            _ = try await fixture.client.waitForCompletion(running, timeout: .milliseconds(400))
        }
        #expect(clock.now - start < .seconds(5))
        await #expect(throws: StoreError.self) { _ = try await fixture.client.waitForCompletion(UUID(), timeout: .seconds(1)) }
    }

    @Test(arguments: [
        (#"{"a": x}"#, 1, 7),
        ("{\n  \"a\": 1,\n  \"b\": }", 3, 8),
        (#"{"a": 1"#, 1, 8),
    ])
    func invalidJSONNamesLineAndColumn(text: String, line: Int, column: Int) throws {
        do {
            _ = try JSONInput.parse(text, source: "The context")
            Issue.record("parsed invalid JSON")
        } catch {
            guard case .invalidJSON(let source, _, let foundLine, let foundColumn) = error else { Issue.record("\(error)"); return }
            #expect(source == "The context")
            #expect(foundLine == line && foundColumn == column, "\(error)")
        }
        #expect(try JSONInput.parse(#"{"a": [1, 2.5, "x", null]}"#, source: "x") == ["a": [1, 2.5, "x", nil]])
    }
}

/// Progress snapshots seen by a watcher, from its @Sendable callback.
final class SnapshotLog: Sendable {
    private let storage = Mutex<[TaskDetail]>([])
    func append(_ detail: TaskDetail) { storage.withLock { $0.append(detail) } }
    var states: [TaskState] { storage.withLock { $0.map(\.state) } }
}
