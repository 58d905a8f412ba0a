import Foundation
import OrcastraDevDB
import OrcastraMigrations
import OrcastraPostgres
import OrcastraTesting
import Testing

/// `/readyz` follows the database: 503 with the reason while it is down or not migrated, 200 again
/// once it is back; `/healthz` stays 200 throughout.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ReadinessTests {
    @Test("readyz is 503 while the database is stopped and 200 once it returns", .timeLimit(.minutes(5)))
    func databaseStopsAndReturns() async throws {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("orcastra-api-\(UUID().uuidString.prefix(8))")
        let server = try LocalPostgres(dataDirectory: directory, options: .init(durable: false))
        defer {
            try? server.killBlocking()
            try? FileManager.default.removeItem(at: directory)
        }
        let url = try await server.start()
        // Not migrated yet: up, but not ready, and it says why.
        let api = try await APIFixture(url: url)
        defer { Task { await api.shutdown() } }
        var (status, _, body) = try await api.object("GET", "/readyz")
        #expect(status == 503 && body["status"] as? String == "unavailable", "\(body)")
        #expect((body["reason"] as? String)?.contains("migrat") == true, "\(body)")

        let connection = try await PostgresConnection.connect(url)
        try await Migrator.bundled().migrate(on: connection)
        await connection.close()
        (status, _, body) = try await api.object("GET", "/readyz")
        #expect(status == 200 && body["status"] as? String == "ready", "\(body)")

        try await server.stop()
        (status, _, body) = try await api.object("GET", "/readyz")
        #expect(status == 503 && (body["reason"] as? String)?.contains("database") == true, "\(body)")
        (status, _, _) = try await api.object("GET", "/healthz")
        #expect(status == 200)
        // An API call while the database is away is a 503 problem, not a 500.
        (status, _, body) = try await api.object("GET", "/v1/tasks", token: "orc_000000000000_x")
        #expect(status == 503 && (body["type"] as? String)?.hasSuffix("unavailable") == true, "\(body)")

        _ = try await server.start()
        let deadline = ContinuousClock.now + .seconds(20)
        repeat {
            (status, _, body) = try await api.object("GET", "/readyz")
            if status == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        } while ContinuousClock.now < deadline
        #expect(status == 200 && body["status"] as? String == "ready", "\(body)")
    }
}

/// The API stops with the orchestrator's service group.
@Suite(.serialized, .timeLimit(.minutes(5))) struct HTTPShutdownTests {
    @Test("SIGTERM stops the orchestrator and its API gracefully", .timeLimit(.minutes(5)))
    func gracefulShutdown() async throws {
        let api = try await APIFixture()
        defer { Task { await api.shutdown() } }
        let orchestrator = try #require(api.orchestrator)
        orchestrator.send(SIGTERM)
        let status = await orchestrator.wait(timeout: .seconds(20))
        #expect(status == 0, "\(api.cluster.logs)")
        await #expect(throws: (any Error).self) { try await api.request("GET", "/healthz") }
    }

    @Test("ORCASTRA_HTTP_ADDRESS serves the API like --http-address", .timeLimit(.minutes(5)))
    func addressFromTheEnvironment() async throws {
        let api = try await APIFixture(start: false)
        defer { Task { await api.shutdown() } }
        let log = NSTemporaryDirectory() + "orcastra-http-env-\(UUID().uuidString.prefix(8)).log"
        let process = try BackgroundProcess(CommandLineTool("orcastra-orchestrator").path, ["--log-level", "debug"],
                                            environment: ["ORCASTRA_DATABASE_URL": api.cluster.url,
                                                          "ORCASTRA_HTTP_ADDRESS": "127.0.0.1:\(api.port)"], logPath: log)
        defer { Task { await process.stop() } }
        var status = 0
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let (code, _, _) = try? await api.request("GET", "/healthz") { status = code; break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(status == 200, "\(process.log)")
    }
}
