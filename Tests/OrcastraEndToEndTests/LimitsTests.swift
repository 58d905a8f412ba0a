import Foundation
import OrcastraInvariants
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

/// Issue 19 with real processes: a template's concurrency key and its task timeout.
extension EndToEndTests {
@Suite(.timeLimit(.minutes(5))) struct LimitsTests {
    static let perCustomer = """
        namespace: e2e
        name: per_customer
        version: 1.0.0
        concurrency: {key: "$.context.customer", limit: 1}
        steps:
          - {name: charge, handler: orcastra.sleep}
          - {name: receipt, handler: orcastra.noop, depends_on: [charge]}
        """

    /// 50 tasks for 5 keys, limit 1: never two tasks of one key hold a slot at once (replayed from
    /// the task transitions), each key's tasks start in creation order, and the rest waited.
    @Test func aKeyRunsOneTaskAtATime() async throws {
        let cluster = try await ProcessCluster()
        do {
            try await cluster.register(Self.perCustomer)
            try cluster.orchestrator()
            try cluster.worker()
            var tasks: [UUID] = []
            for index in 0..<50 {
                tasks.append(try await cluster.submit("e2e/per_customer", context: ["customer": .string("c\(index % 5)"), "sleep_ms": 100]))
            }
            for task in tasks {
                #expect(try await cluster.settled(task, within: .seconds(60)) == "complete", "\(cluster.logs)")
            }
            // Replay: a task holds its key's slot from its move into in_progress or
            // waiting_for_retry until it leaves both.
            let moves = try await cluster.pool.query("""
                SELECT t.concurrency_key AS key, tt.task_id, tt.from_state, tt.to_state
                FROM orcastra.task_transitions tt JOIN orcastra.tasks t ON t.id = tt.task_id
                WHERE t.concurrency_key IS NOT NULL ORDER BY tt.id
                """)
            let live: Set<String> = ["in_progress", "waiting_for_retry"]
            var holding: [String: Set<UUID>] = [:]
            var most: [String: Int] = [:]
            var startOrder: [String: [UUID]] = [:]
            for row in moves {
                let key: String = try row.decode("key")
                let task: UUID = try row.decode("task_id")
                let from = try row.decode("from_state", as: String?.self)
                let to: String = try row.decode("to_state")
                if live.contains(to), !live.contains(from ?? "") {
                    holding[key, default: []].insert(task)
                    startOrder[key, default: []].append(task)
                } else if !live.contains(to) {
                    holding[key, default: []].remove(task)
                }
                most[key] = max(most[key] ?? 0, holding[key]?.count ?? 0)
            }
            #expect(most == ["c0": 1, "c1": 1, "c2": 1, "c3": 1, "c4": 1])
            for key in 0..<5 {
                let created = tasks.enumerated().filter { $0.offset % 5 == key }.map(\.element)
                #expect(startOrder["c\(key)"] == created, "key c\(key) started out of creation order")
            }
            // All but the first of each key waited for a slot, and started when one freed.
            #expect(try await cluster.count("""
                SELECT count(*) FROM orcastra.task_transitions WHERE from_state IS NULL AND to_state = 'pending'
                  AND reason LIKE 'waiting for a concurrency slot (key c_)'
                """) >= 40)
            #expect(try await cluster.count("""
                SELECT count(*) FROM orcastra.task_transitions WHERE from_state = 'pending' AND to_state = 'in_progress'
                  AND reason LIKE 'a concurrency slot freed (key c_)'
                """) >= 40)
            try await Self.expectInvariantsHold(cluster)
        } catch {
            Issue.record(error, "\(cluster.logs)")
        }
        await cluster.shutdown()
    }

    /// Cancelling the task that holds the slot starts the next in line in the same transaction;
    /// cancelling a waiting one frees nothing. A context without the key is refused (OR010).
    @Test func cancellingFreesTheSlotAndAMissingKeyIsRefused() async throws {
        let cluster = try await ProcessCluster()
        do {
            try await cluster.register(Self.perCustomer)
            // No worker: the first task keeps its slot until it is cancelled.
            let first = try await cluster.submit("e2e/per_customer", context: ["customer": "x"])
            let second = try await cluster.submit("e2e/per_customer", context: ["customer": "x"])
            let third = try await cluster.submit("e2e/per_customer", context: ["customer": "x"])
            let other = try await cluster.submit("e2e/per_customer", context: ["customer": 7])
            #expect(try await cluster.taskState(first) == "in_progress")
            #expect(try await cluster.taskState(second) == "pending")
            #expect(try await cluster.taskState(other) == "in_progress")
            _ = try await cluster.pool.query("SELECT orcastra.cancel_task(\(second), 'changed my mind')")
            #expect(try await cluster.taskState(third) == "pending")
            _ = try await cluster.pool.query("SELECT orcastra.cancel_task(\(first), 'stuck')")
            #expect(try await cluster.taskState(third) == "in_progress")
            #expect(try await cluster.steps(third) == ["charge": "enqueued", "receipt": "pending"])
            await #expect {
                _ = try await cluster.submit("e2e/per_customer", context: ["client": "x"])
            } throws: { error in
                guard case .concurrencyKeyMissing(let template, let key)? = error as? StoreError else { return false }
                return template == "e2e/per_customer@1.0.0" && key == "$.context.customer"
            }
            var refusal = ""
            do {
                _ = try await cluster.submit("e2e/per_customer", context: ["customer": nil])
            } catch {
                refusal = "\(error)"
            }
            #expect(refusal.contains("The concurrency key $.context.customer of e2e/per_customer@1.0.0 selects nothing"), "\(refusal)")
            // The SQL function itself says so with SQLSTATE OR010, for callers of create_task.
            var sqlRefusal = ""
            do {
                _ = try await cluster.pool.query("""
                    SELECT * FROM orcastra.create_task_by_name('e2e', 'per_customer', p_context => '{"client": 1}')
                    """)
            } catch {
                sqlRefusal = "\(error)"
            }
            #expect(sqlRefusal.contains("OR010"), "\(sqlRefusal)")
            try await Self.expectInvariantsHold(cluster)
        } catch {
            Issue.record(error, "\(cluster.logs)")
        }
        await cluster.shutdown()
    }

    /// A task timeout hit mid-step: the running step is cancelled and its lease voided, the task
    /// fails with the reason in its transition, and the worker's late report is refused; with two
    /// orchestrators, every task fails once.
    @Test func aTaskTimeoutCancelsTheRunningStep() async throws {
        let cluster = try await ProcessCluster()
        do {
            try await cluster.register("""
                namespace: e2e
                name: slow
                version: 1.0.0
                timeout: 2s
                steps:
                  - {name: crawl, handler: orcastra.sleep, timeout: 1m}
                  - {name: after, handler: orcastra.noop, depends_on: [crawl]}
                """)
            // Two orchestrators run the deadline chore at once: each task fails exactly once.
            try cluster.orchestrator()
            try cluster.orchestrator()
            try cluster.worker()
            let task = try await cluster.submit("e2e/slow", context: ["sleep_ms": 20_000])
            let others = [try await cluster.submit("e2e/slow", context: ["sleep_ms": 20_000]),
                          try await cluster.submit("e2e/slow", context: ["sleep_ms": 20_000])]
            #expect(await waitUntil(within: .seconds(10)) {
                (try? await cluster.steps(task))?["crawl"] == "in_progress"
            })
            let lease = try await cluster.stepRow(task, step: "crawl")
            let stepID: Int64 = try lease.decode("id")
            let token: UUID = try lease.decode("lease_token")
            let started = ContinuousClock.now
            #expect(try await cluster.settled(task, within: .seconds(15)) == "error", "\(cluster.logs)")
            #expect(ContinuousClock.now - started < .seconds(8), "the orchestrator's due-timer should fire at the deadline")
            let row = try await cluster.pool.queryRowAny("""
                SELECT state_reason, error, finished_at >= deadline_at AS late_enough,
                       finished_at - started_at >= interval '2 seconds' AS ran_two_seconds
                FROM orcastra.tasks WHERE id = \(task)
                """)
            #expect(try row.decode("state_reason", as: String.self) == "timed out: not finished 2s after it started (the template's timeout)")
            #expect(try row.decode("error", as: String.self) == "timed out after 2s while running crawl")
            #expect(try row.decode("late_enough", as: Bool.self) && row.decode("ran_two_seconds", as: Bool.self))
            #expect(try await cluster.steps(task) == ["crawl": "cancelled", "after": "cancelled"])
            #expect(try await cluster.count("""
                SELECT count(*) FROM orcastra.step_transitions WHERE step_id = \(stepID) AND from_state = 'in_progress'
                  AND to_state = 'cancelled' AND reason = 'cancelled while running: the task''s timeout passed'
                """) == 1)
            // The worker that still runs the step cannot complete it: its lease is gone.
            let outcome = try await cluster.pool.queryRowAny("""
                SELECT outcome FROM orcastra.complete_steps(ARRAY[\(stepID)]::bigint[], ARRAY[\(token)]::uuid[], ARRAY['{}'::jsonb])
                """)
            #expect(try outcome.decode("outcome", as: String.self) == "lease_lost")
            #expect(try await cluster.steps(task)["crawl"] == "cancelled")
            #expect(try await cluster.count("SELECT count(*) FROM orcastra.step_results r JOIN orcastra.steps s ON s.id = r.step_id WHERE s.task_id = \(task)") == 0)
            for other in others {
                #expect(try await cluster.settled(other, within: .seconds(15)) == "error", "\(cluster.logs)")
            }
            #expect(try await cluster.count("""
                SELECT count(*) FROM orcastra.task_transitions WHERE to_state = 'error' AND reason LIKE 'timed out%'
                """) == 3)
            try await Self.expectInvariantsHold(cluster)
        } catch {
            Issue.record(error, "\(cluster.logs)")
        }
        await cluster.shutdown()
    }

    /// A step concurrency of 3, two workers with 10 slots each: never more than 3 attempts of the
    /// step in_progress at once (replayed from the step transitions), the limit reached, and a
    /// step without a limit in the same namespace is not held back.
    @Test func aStepConcurrencyOfThree() async throws {
        let cluster = try await ProcessCluster()
        do {
            try await cluster.register("""
                namespace: e2e
                name: rate_limited
                version: 1.0.0
                steps:
                  - {name: call, handler: orcastra.sleep, concurrency: 3}
                  - {name: local, handler: orcastra.noop}
                """)
            try cluster.worker()
            try cluster.worker()
            var tasks: [UUID] = []
            for _ in 0..<24 { tasks.append(try await cluster.submit("e2e/rate_limited", context: ["sleep_ms": 150])) }
            for task in tasks {
                #expect(try await cluster.settled(task, within: .seconds(60)) == "complete", "\(cluster.logs)")
            }
            let moves = try await cluster.pool.query("""
                SELECT st.from_state, st.to_state FROM orcastra.step_transitions st JOIN orcastra.steps s ON s.id = st.step_id
                WHERE s.name = 'call' ORDER BY st.id
                """)
            var running = 0, most = 0
            for row in moves {
                let from = try row.decode("from_state", as: String?.self), to: String = try row.decode("to_state")
                if to == "in_progress" { running += 1 } else if from == "in_progress" { running -= 1 }
                most = max(most, running)
            }
            #expect(most == 3, "at most 3 attempts of call at once, and the limit was reached")
            // The unlimited step of every task ran while calls waited: each local finished before the last call started.
            #expect(try await cluster.count("""
                SELECT count(*) FROM orcastra.step_transitions st JOIN orcastra.steps s ON s.id = st.step_id
                WHERE s.name = 'local' AND st.to_state = 'complete'
                  AND st.id < (SELECT max(x.id) FROM orcastra.step_transitions x JOIN orcastra.steps y ON y.id = x.step_id
                               WHERE y.name = 'call' AND x.to_state = 'in_progress')
                """) == 24)
            try await Self.expectInvariantsHold(cluster)
        } catch {
            Issue.record(error, "\(cluster.logs)")
        }
        await cluster.shutdown()
    }

    static func expectInvariantsHold(_ cluster: ProcessCluster, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let connection = try await PostgresConnection.connect(cluster.url)
        let found: [InvariantViolation]
        do {
            found = try await InvariantChecker().check(on: connection)
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
        #expect(found.isEmpty, "\(found.map(\.description))", sourceLocation: sourceLocation)
    }
}
}
