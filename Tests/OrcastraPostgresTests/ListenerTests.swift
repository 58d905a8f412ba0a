import Foundation
import OrcastraDevDB
import OrcastraPostgres
import OrcastraTesting
import Testing

@Suite struct ListenerTests {
    /// Reads events until `predicate` matches or the deadline passes.
    func next(_ iterator: inout PostgresListener.AsyncIterator, within limit: Duration,
              where predicate: @escaping @Sendable (PostgresListener.Event) -> Bool) async -> PostgresListener.Event? {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let event = await withTaskGroup(of: PostgresListener.Event?.self) { group -> PostgresListener.Event? in
                nonisolated(unsafe) var local = iterator
                group.addTask { try? await Task.sleep(until: deadline); return nil }
                let value = await local.next()
                group.cancelAll()
                iterator = local
                return value
            }
            guard let event else { return nil }
            if predicate(event) { return event }
        }
        return nil
    }

    @Test func receivesNotifyFromAnotherConnection() async throws {
        let url = try await TestDatabases.shared.makeDatabase()
        let listener = PostgresListener(conninfo: url, channels: ["orcastra_test", "Mixed Case"])
        var events = listener.makeAsyncIterator()
        #expect(await events.next() == .listening(reconnected: false))
        let sender = try await PostgresConnection.connect(url)
        try await sender.execute("SELECT pg_notify('orcastra_test', \("hello"))")
        try await sender.execute("NOTIFY \"Mixed Case\", 'second'")
        #expect(await events.next() == .notification(channel: "orcastra_test", payload: "hello"))
        #expect(await events.next() == .notification(channel: "Mixed Case", payload: "second"))
        listener.stop()
        await sender.close()
    }

    /// The listener survives a server restart: it reconnects, says so, and receives again.
    @Test func reconnectsAfterServerRestart() async throws {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("orcastra-listen-\(UUID().uuidString.prefix(8))")
        let cluster = try LocalPostgres(dataDirectory: directory, options: .init(durable: false, maxConnections: 20))
        defer { try? cluster.destroyBlocking() }
        let url = try await cluster.start()
        let listener = PostgresListener(conninfo: url, channels: ["wake"], backoff: (.milliseconds(50), .milliseconds(500)))
        var events = listener.makeAsyncIterator()
        #expect(await events.next() == .listening(reconnected: false))

        try await cluster.kill()
        _ = try await cluster.start()
        #expect(await events.next() == .listening(reconnected: true))
        let sender = try await PostgresConnection.connect(url)
        try await sender.execute("NOTIFY wake, 'after restart'")
        #expect(await events.next() == .notification(channel: "wake", payload: "after restart"))
        listener.stop()
        await sender.close()
    }
}
