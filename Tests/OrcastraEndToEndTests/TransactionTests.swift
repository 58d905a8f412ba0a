import Foundation
import Logging
import OrcastraClient
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import OrcastraWorker
import Testing

/// Transactional submission and transactional steps (docs/transactions.md). The crash proof is in
/// Tests/OrcastraReliabilityTests/ExactlyOnceTests.
extension EndToEndTests {
@Suite(.timeLimit(.minutes(3))) struct TransactionTests {
    // MARK: - Submission

    @Test func aRolledBackSubmissionLeavesNoTaskAndWakesNoWorkerACommittedOneRunsAtOnce() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register("""
            namespace: txn
            name: one
            version: 1.0.0
            steps:
              - {name: work, handler: orcastra.noop}
            """)
        // Polling only every 30 s: a task run sooner was woken by its NOTIFY.
        let worker = try cluster.worker(namespace: "txn", ["--poll-interval", "30s"])
        #expect(await waitUntil(within: .seconds(10)) { worker.log.contains("worker started") }, "\(cluster.logs)")
        let channel: String = try await cluster.pool.queryRowAny("SELECT orcastra.namespace_channel('txn') AS channel").decode("channel")
        let listener = PostgresListener(conninfo: cluster.url, channels: [channel])
        let events = AsyncRecorder(listener)
        defer { events.cancel(); listener.stop() }
        #expect(await events.next(within: .seconds(10)) == .listening(reconnected: false))

        let client = OrcastraClient(pool: cluster.pool)
        let request = TaskRequest(template: try TemplateReference(parsing: "txn/one"))
        let connection = try await PostgresConnection.connect(cluster.url)
        defer { Task { await connection.close() } }

        // Rolled back: the task was there inside the transaction, and is gone with it. (BEGIN and
        // ROLLBACK by hand, as any driver would; withTransaction below.)
        try await connection.execute("BEGIN")
        let rolledBack = try await client.submit(request, in: connection)
        let seenInside = try await connection.queryRow("SELECT count(*) FROM orcastra.tasks WHERE id = \(rolledBack.taskID)").decode(at: 0, as: Int.self)
        try await connection.execute("ROLLBACK")
        #expect(seenInside == 1)
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.tasks") == 0)
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.steps") == 0)
        #expect(await events.next(within: .seconds(1)) == nil, "a rolled-back submission woke the namespace")

        // Committed: nobody is woken before the commit; at the commit the worker is, and runs it.
        let taskID = try await connection.withTransaction { connection in
            let created = try await client.submit(request, in: connection)
            #expect(await events.next(within: .milliseconds(300)) == nil, "woken before the commit")
            return created.taskID
        }
        let committed = ContinuousClock.now
        #expect(await events.next(within: .seconds(2)) == .notification(channel: channel, payload: ""))
        #expect(try await cluster.settled(taskID, within: .seconds(10)) == "complete", "\(cluster.logs)")
        let latency = ContinuousClock.now - committed
        #expect(latency < .seconds(2), "the committed task took \(latency): the worker was not woken by its commit")
        print("transactional submission: commit → complete in \(latency)")
    }

    @Test func aTransactionalSubmissionKeepsTheChecksAndRefusesAutocommit() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register("""
            namespace: txn
            name: typed
            version: 1.0.0
            input_schema:
              type: object
              required: [id]
              properties: {id: {type: integer}}
            steps:
              - {name: work, handler: orcastra.noop}
            """)
        let client = OrcastraClient(pool: cluster.pool)
        let template = try TemplateReference(parsing: "txn/typed")
        let connection = try await PostgresConnection.connect(cluster.url)
        defer { Task { await connection.close() } }
        // Outside a transaction: refused, nothing written.
        await #expect {
            _ = try await client.submit(TaskRequest(template: template, context: ["id": 1]), in: connection)
        } throws: { error in
            guard case StoreError.notInTransaction = error else { return false }
            return true
        }
        // In one: the same checks as a plain submission, before anything is sent, so the caller's
        // transaction stays usable.
        let outcome = try await connection.withTransaction { connection -> Bool in
            var refused = false
            do {
                _ = try await client.submit(TaskRequest(template: template, context: ["id": "seven"]), in: connection)
            } catch StoreError.contextInvalid {
                refused = true
            }
            #expect(connection.transactionStatus == .inTransaction)
            _ = try await client.submit(TaskRequest(template: template, context: ["id": 7]), in: connection)
            return refused
        }
        #expect(outcome)
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.tasks") == 1)
    }

    @Test func commandStepsGetTheirIdempotencyKeyTheSameInEveryAttempt() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register("""
            namespace: txn
            name: keyed
            version: 1.0.0
            defaults:
              retry: {max_attempts: 2, backoff: fixed, initial_delay: 50ms, jitter: false}
            steps:
              # The first attempt fails after printing its key; the second returns its key.
              - name: call
                command: [sh, -c, 'echo "$ORCASTRA_IDEMPOTENCY_KEY" >&2; [ "$ORCASTRA_ATTEMPT" -ge 2 ] || exit 1; echo "{\\"key\\": \\"$ORCASTRA_IDEMPOTENCY_KEY\\"}"']
            """)
        try cluster.orchestrator()
        try cluster.worker(namespace: "txn")
        let task = try await cluster.submit("txn/keyed")
        #expect(try await cluster.settled(task) == "complete", "\(cluster.logs)")
        let key = "\(task.uuidString.lowercased())/call"
        #expect(try await cluster.result(task, step: "call") == ["key": .string(key)])
        // The failed first attempt saw the same key: its stderr is its recorded error.
        #expect(try await cluster.count("""
            SELECT count(*) FROM orcastra.step_transitions t JOIN orcastra.steps s ON s.id = t.step_id
            WHERE s.task_id = \(task) AND t.to_state = 'waiting_for_retry' AND t.metadata ->> 'error' LIKE '%' || \(key)::text || '%'
            """) == 1)
    }

    // MARK: - Transactional steps through SQL alone (any driver)

    @Test func completeStepInTransactionCommitsOnlyACompletedStep() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register("""
            namespace: txsql
            name: two
            version: 1.0.0
            steps:
              - {name: a, handler: any.thing}
              - {name: b, handler: any.thing, depends_on: [a]}
            """)
        let connection = try await PostgresConnection.connect(cluster.url)
        defer { Task { await connection.close() } }
        try await connection.execute("CREATE TABLE public.effects (step_id bigint PRIMARY KEY)")
        func claim() async throws -> (id: Int64, token: UUID) {
            let row = try await connection.queryRow("SELECT * FROM orcastra.claim_steps('txsql', 'sql-worker', 1, 30000)")
            return (try row.decode("step_id"), try row.decode("lease_token"))
        }
        func attempt(_ id: Int64, _ token: UUID) async throws -> String {
            try await connection.execute("BEGIN")
            try await connection.execute("INSERT INTO public.effects (step_id) VALUES (\(id))")
            do {
                let outcome: String = try await connection.queryRow("""
                    SELECT orcastra.complete_step_in_transaction(\(id), \(token), '{"done": true}') AS outcome
                    """).decode("outcome")
                try await connection.execute("COMMIT")
                return outcome
            } catch let error as PostgresError {
                try await connection.execute("ROLLBACK")
                guard case .server(let server) = error, server.sqlState == "OR005" else { throw error }
                return "OR005 \(server.detail ?? "")"
            }
        }

        let task = try await cluster.submit("txsql/two")
        let a = try await claim()
        // A wrong token: the step is not completed, and the effect rolls back with it.
        #expect(try await attempt(a.id, UUID()) == "OR005 lease_lost")
        #expect(try await cluster.count("SELECT count(*) FROM public.effects") == 0)
        #expect(try await cluster.stepRow(task, step: "a").decode("state", as: String.self) == "in_progress")
        // The right one: the effect, the result and the child's release commit together.
        #expect(try await attempt(a.id, a.token) == "completed")
        #expect(try await cluster.count("SELECT count(*) FROM public.effects") == 1)
        #expect(try await cluster.steps(task) == ["a": "complete", "b": "enqueued"])
        #expect(try await cluster.result(task, step: "a") == ["done": true])
        // A cancelled task: refused as 'ignored', nothing written.
        let b = try await claim()
        _ = try await OrcastraClient(pool: cluster.pool).cancel(task)
        #expect(try await attempt(b.id, b.token) == "OR005 ignored")
        #expect(try await cluster.count("SELECT count(*) FROM public.effects") == 1)
    }

    // MARK: - Transactional steps, in a worker of the test's own

    /// Inserts a row for its step, then does what the task's context says.
    struct Writes: TransactionalStepHandler {
        static let name = "txn.writes"
        struct Input: Decodable, Sendable {
            /// Fail retryably on the first attempt, after the insert.
            var failFirst: Bool?
            /// COMMIT by itself (which the worker must refuse).
            var commit: Bool?
            /// Run `pg_sleep` for this many seconds after the insert.
            var sleepSeconds: Double?
            /// Wait this long after the insert, outside the database.
            var waitMilliseconds: Int?
        }

        func run(_ input: Input, context: StepContext, transaction: StepTransaction) async throws -> [String: Int] {
            try await transaction.execute("""
                INSERT INTO txtest.rows (step_id, attempt, idempotency_key) VALUES (\(context.stepID), \(context.attempt), \(context.idempotencyKey))
                """)
            if input.failFirst == true, context.attempt == 1 { throw StepFailure.retryable("first attempt fails after its insert") }
            if input.commit == true { try await transaction.execute("COMMIT") }
            if let seconds = input.sleepSeconds { try await transaction.execute("SELECT pg_sleep(\(seconds))") }
            if let wait = input.waitMilliseconds { try await Task.sleep(for: .milliseconds(wait)) }
            return ["attempt": context.attempt]
        }
    }

    static let template = """
        namespace: txinproc
        name: writes
        version: 1.0.0
        defaults:
          retry: {max_attempts: 2, backoff: fixed, initial_delay: 50ms, jitter: false}
        steps:
          - {name: write, handler: txn.writes, timeout: 3s}
          - {name: after, depends_on: [write], handler: orcastra.echo}
        """

    /// Runs `body` with an in-process worker that has the `Writes` handler, and stops it after.
    func withWorker(_ body: (ProcessCluster, Worker) async throws -> Void) async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.template)
        try cluster.orchestrator()  // enqueues the retries
        _ = try await cluster.pool.query("CREATE SCHEMA txtest")
        _ = try await cluster.pool.query("CREATE TABLE txtest.rows (step_id bigint PRIMARY KEY, attempt int NOT NULL, idempotency_key text NOT NULL)")
        var handlers = HandlerRegistry.builtIn
        handlers.register(Writes())
        var configuration = WorkerConfiguration(conninfo: cluster.url, namespace: "txinproc")
        configuration.pollInterval = .milliseconds(100)
        configuration.gracePeriod = .seconds(5)
        let worker = Worker(configuration: configuration, handlers: handlers, logger: Logger(label: "test"))
        let running = Task { await worker.run() }
        do {
            try await body(cluster, worker)
        } catch {
            worker.shutDownGracefully()
            await running.value
            throw error
        }
        worker.shutDownGracefully()
        await running.value
    }

    func rows(_ cluster: ProcessCluster, _ task: UUID) async throws -> [(attempt: Int, key: String)] {
        try await cluster.pool.query("""
            SELECT r.attempt, r.idempotency_key FROM txtest.rows r JOIN orcastra.steps s ON s.id = r.step_id WHERE s.task_id = \(task)
            """).rows.map { (try $0.decode("attempt", as: Int.self), try $0.decode("idempotency_key", as: String.self)) }
    }

    @Test func theWritesCommitWithTheStepAndARetryableFailureRollsThemBack() async throws {
        try await withWorker { cluster, _ in
            let task = try await cluster.submit("txinproc/writes", context: ["failFirst": true])
            #expect(try await cluster.settled(task) == "complete", "\(cluster.logs)")
            // Attempt 1 wrote, then failed: its row was rolled back and its failure recorded.
            let written = try await rows(cluster, task)
            #expect(written.map(\.attempt) == [2])
            #expect(written.first?.key == "\(task.uuidString.lowercased())/write")
            #expect(try await cluster.count("""
                SELECT count(*) FROM orcastra.step_transitions t JOIN orcastra.steps s ON s.id = t.step_id
                WHERE s.task_id = \(task) AND s.name = 'write' AND t.to_state = 'waiting_for_retry'
                """) == 1)
            // The child saw the result stored in the same commit.
            #expect(try await cluster.result(task, step: "after") == ["context": ["failFirst": true], "parents": ["write": ["attempt": 2]]])
        }
    }

    @Test func aHandlerThatCommitsByItselfFailsItsStep() async throws {
        try await withWorker { cluster, _ in
            let task = try await cluster.submit("txinproc/writes", context: ["commit": true])
            #expect(try await cluster.settled(task) == "error", "\(cluster.logs)")
            let step = try await cluster.stepRow(task, step: "write")
            #expect(try step.decode("attempts", as: Int.self) == 1)
            #expect(try step.decode("last_error", as: String.self).contains("ended the step's transaction itself"))
        }
    }

    @Test func aTimeoutCancelsTheHandlersQueryAndRollsBack() async throws {
        try await withWorker { cluster, _ in
            let started = ContinuousClock.now
            let task = try await cluster.submit("txinproc/writes", context: ["sleepSeconds": 30])
            // Two attempts of 3 s each, not two of pg_sleep's 30 s: the statement was cancelled.
            #expect(try await cluster.settled(task, within: .seconds(20)) == "error", "\(cluster.logs)")
            #expect(ContinuousClock.now - started < .seconds(15))
            let step = try await cluster.stepRow(task, step: "write")
            #expect(try step.decode("last_error", as: String.self).contains("timed out"))
            #expect(try await rows(cluster, task).isEmpty)
        }
    }

    @Test func aCancelledTaskRollsTheStepsWritesBack() async throws {
        try await withWorker { cluster, _ in
            let task = try await cluster.submit("txinproc/writes", context: ["waitMilliseconds": 700])
            #expect(await waitUntil(within: .seconds(10)) {
                try await cluster.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(task) AND name = 'write' AND state = 'in_progress'") == 1
            })
            _ = try await OrcastraClient(pool: cluster.pool).cancel(task)
            #expect(try await cluster.settled(task) == "cancelled")
            // The handler finishes its wait, reports in its transaction, hears "ignored", rolls back.
            try await Task.sleep(for: .milliseconds(1200))
            #expect(try await rows(cluster, task).isEmpty)
            #expect(try await cluster.stepRow(task, step: "write").decode("state", as: String.self) == "cancelled")
        }
    }

    @Test func anAttemptThatLostItsLeaseRollsBackAndTheNextOneWrites() async throws {
        try await withWorker { cluster, _ in
            let task = try await cluster.submit("txinproc/writes", context: ["waitMilliseconds": 800])
            #expect(await waitUntil(within: .seconds(10)) {
                try await cluster.count("SELECT count(*) FROM orcastra.steps WHERE task_id = \(task) AND name = 'write' AND state = 'in_progress'") == 1
            })
            // As an orchestrator does once a lease ran out: the step goes back in line with a new
            // attempt while the first one still runs (its heartbeat is 10 s away).
            _ = try await cluster.pool.query("UPDATE orcastra.steps SET lease_expires_at = now() - interval '1 second' WHERE task_id = \(task) AND name = 'write'")
            #expect(try await cluster.pool.queryRowAny("SELECT orcastra.recover_expired_leases(10) AS n").decode("n", as: Int.self) == 1)
            #expect(try await cluster.settled(task) == "complete", "\(cluster.logs)")
            // Attempt 1 held the row's key until it heard "lease_lost" and rolled back; attempt 2's row is the one.
            #expect(try await rows(cluster, task).map(\.attempt) == [2])
            #expect(try await cluster.result(task, step: "write") == ["attempt": 2])
        }
    }
}
}
