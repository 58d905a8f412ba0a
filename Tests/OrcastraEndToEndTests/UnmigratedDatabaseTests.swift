import Foundation
import OrcastraMigrations
import OrcastraPostgres
import OrcastraTemplates
import OrcastraTesting
import Testing

/// Started before `orcastra migrate`, the worker and the orchestrator say what to do instead of
/// repeating a raw SQL error, and start working as soon as the schema is there.
extension EndToEndTests {
@Suite(.serialized, .timeLimit(.minutes(3))) struct UnmigratedDatabaseTests {
    @Test func processesOnAnUnmigratedDatabaseSayToMigrateThenWork() async throws {
        let url = try await TestDatabases.shared.makeEmptyDatabase()
        let cluster = try await ProcessCluster(url: url)
        defer { Task { await cluster.shutdown() } }
        let orchestrator = try cluster.orchestrator()
        let worker = try cluster.worker(namespace: "e2e")
        #expect(await waitUntil(within: .seconds(10)) {
            orchestrator.log.contains("run `orcastra migrate`") && worker.log.contains("run `orcastra migrate`")
        }, "\(cluster.logs)")

        let connection = try await PostgresConnection.connect(url)
        try await Migrator.bundled().migrate(on: connection)
        await connection.close()
        try await cluster.register("""
            namespace: e2e
            name: after_migrate
            version: 1.0.0
            steps:
              - {name: a, handler: orcastra.noop}
            """)
        let task = try await cluster.submit("e2e/after_migrate")
        #expect(try await cluster.settled(task, within: .seconds(20)) == "complete", "\(cluster.logs)")
    }
}
}
