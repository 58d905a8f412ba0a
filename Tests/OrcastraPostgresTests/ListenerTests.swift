import Foundation
import OrcastraDevDB
import OrcastraPostgres
import OrcastraTesting
import Testing

@Suite(.timeLimit(.minutes(5))) struct ListenerTests {
    @Test func receivesNotifyFromAnotherConnection() async throws {
        let url = try await TestDatabases.shared.makeDatabase()
        let listener = PostgresListener(conninfo: url, channels: ["orcastra_test", "Mixed Case"])
        // Every wait has a deadline: a lost event fails the test instead of hanging it.
        let events = AsyncRecorder(listener)
        defer { events.cancel() }
        #expect(await events.next(within: .seconds(10)) == .listening(reconnected: false))
        let sender = try await PostgresConnection.connect(url)
        try await sender.execute("SELECT pg_notify('orcastra_test', \("hello"))")
        try await sender.execute("NOTIFY \"Mixed Case\", 'second'")
        #expect(await events.next(within: .seconds(10)) == .notification(channel: "orcastra_test", payload: "hello"))
        #expect(await events.next(within: .seconds(10)) == .notification(channel: "Mixed Case", payload: "second"))
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
        let events = AsyncRecorder(listener)
        defer { events.cancel() }
        #expect(await events.next(within: .seconds(10)) == .listening(reconnected: false))

        try await cluster.kill()
        _ = try await cluster.start()
        #expect(await events.next(within: .seconds(30)) == .listening(reconnected: true))
        let sender = try await PostgresConnection.connect(url)
        try await sender.execute("NOTIFY wake, 'after restart'")
        #expect(await events.next(within: .seconds(10)) == .notification(channel: "wake", payload: "after restart"))
        listener.stop()
        await sender.close()
    }
}
