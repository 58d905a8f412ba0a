import Foundation
import OrcastraPostgres
import OrcastraTesting
import Testing

/// Workers, an orchestrator, the test's client and the `orcastra` CLI through a real PgBouncer in
/// transaction mode (Debian's pgbouncer, started on a free port): statements unnamed
/// (`ORCASTRA_PREPARED_STATEMENTS=off`, as PgBouncer before 1.21 requires), LISTEN straight to
/// PostgreSQL (`ORCASTRA_LISTEN_DATABASE_URL`). Skipped where pgbouncer is not installed, unless
/// `ORCASTRA_REQUIRE_PGBOUNCER=1` (CI) makes that a failure.
@Suite(.serialized, .timeLimit(.minutes(8)),
       .enabled(if: LocalPgBouncer.isInstalled || ProcessInfo.processInfo.environment["ORCASTRA_REQUIRE_PGBOUNCER"] == "1"))
struct PgBouncerTests {
    static let template = """
        namespace: pgb
        name: chain
        version: 1.0.0
        defaults:
          retry: {max_attempts: 3, backoff: fixed, initial_delay: 50ms, jitter: false}
        steps:
          - name: first
            command: [sh, -c, 'echo "{\\"attempt\\": $ORCASTRA_ATTEMPT}"']
          # Fails its first attempt: the orchestrator (through PgBouncer too) enqueues the retry.
          - name: flaky
            depends_on: [first]
            command: [sh, -c, '[ "$ORCASTRA_ATTEMPT" -ge 2 ] && echo "{}" || exit 1']
          - name: last
            depends_on: [flaky]
            handler: orcastra.echo
        """

    @Test func workersOrchestratorAndClientsWorkThroughTransactionPooling() async throws {
        #expect(LocalPgBouncer.isInstalled, "pgbouncer is not installed (apt-get install pgbouncer)")
        let direct = try await TestDatabases.shared.makeDatabase()
        let bouncer = try await LocalPgBouncer(in: URL(fileURLWithPath: "/tmp/orcastra-pgb-\(UUID().uuidString.prefix(8).lowercased())"),
                                               server: direct, poolMode: "transaction", poolSize: 3)
        let environment = ["ORCASTRA_PREPARED_STATEMENTS": "off", "ORCASTRA_LISTEN_DATABASE_URL": direct]
        let cluster = try await ProcessCluster(url: bouncer.url, environment: environment, preparedStatements: false)
        do {
            try await cluster.register(Self.template)
            try cluster.orchestrator()
            for _ in 0..<2 { try cluster.worker(namespace: "pgb", ["--concurrency", "8"]) }
            let total = 60
            var tasks: [UUID] = []
            for _ in 0..<total { tasks.append(try await cluster.submit("pgb/chain")) }
            let done = await waitUntil(within: .seconds(60), every: .milliseconds(50)) {
                try await cluster.count("SELECT count(*) FROM orcastra.tasks WHERE state = 'complete'") == total
            }
            #expect(done, "\(bouncer.log.suffix(3000))\n\(cluster.logs)")
            #expect(try await cluster.result(tasks[0], step: "first") == ["attempt": 1])

            // Clients share PgBouncer's few server connections; LISTEN has sessions of its own.
            let sessions = try await ReplicatedPair.on(direct) { connection in
                try await connection.queryRow("""
                    SELECT count(*) FILTER (WHERE query LIKE 'LISTEN %') AS listening,
                           count(*) FILTER (WHERE query NOT LIKE 'LISTEN %') AS others
                    FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
                    """)
            }
            #expect(try sessions.decode("listening", as: Int.self) == 3)  // the orchestrator and both workers
            #expect(try sessions.decode("others", as: Int.self) <= bouncer.poolSize)

            // The CLI through PgBouncer: submit, and wait through the direct LISTEN.
            let submitted = try await CommandLineTool("orcastra").run(["submit", "pgb/chain", "--wait", "--timeout", "60s"],
                                                                     environment: environment.merging(["ORCASTRA_DATABASE_URL": bouncer.url]) { $1 })
            #expect(submitted.status == 0, "\(submitted.output)")
            #expect(try await cluster.count("SELECT count(*) FROM orcastra.tasks WHERE state = 'complete'") == total + 1)
            try await Reliability.expectInvariantsHold(direct, logs: cluster.logs)
        } catch {
            await cluster.shutdown()
            await bouncer.stop()
            throw error
        }
        await cluster.shutdown()
        await bouncer.stop()
    }
}
