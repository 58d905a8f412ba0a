import Foundation
import OrcastraInvariants
import OrcastraPostgres
import OrcastraTesting
import Testing

/// The checker itself: silent on a healthy database, and each invariant catches its own kind of damage.
@Suite(.serialized, .timeLimit(.minutes(5))) struct InvariantCheckerTests {
    static let dag = """
        namespace: rel
        name: pair
        version: 1.0.0
        steps:
          - {name: first, handler: orcastra.noop}
          - {name: second, handler: orcastra.noop, depends_on: [first]}
        """

    static let limited = """
        namespace: rel
        name: limited
        version: 1.0.0
        timeout: 1h
        concurrency: {key: "$.context.k", limit: 1}
        steps:
          - {name: only, handler: orcastra.noop, concurrency: 1}
        """

    @Test func everyInvariantCatchesItsDamage() async throws {
        try await Reliability.withCluster { cluster in
            try await cluster.register(Self.dag)
            try await cluster.register(Self.limited)
            let damaged = try await cluster.submit("rel/pair")
            let stalled = try await cluster.submit("rel/pair")
            let holder = try await cluster.submit("rel/limited", context: ["k": "a"])
            let waiter = try await cluster.submit("rel/limited", context: ["k": "a"])
            let overdue = try await cluster.submit("rel/limited", context: ["k": "b"])
            let checker = InvariantChecker(settleGrace: .zero)
            let connection = try await PostgresConnection.connect(cluster.url)
            defer { Task { await connection.close() } }
            #expect(try await checker.check(on: connection).isEmpty, "a fresh database breaks nothing")

            let second: Int64 = try await cluster.stepRow(damaged, step: "second").decode("id")
            // A result for a step that never ran, and a parent count that lies.
            _ = try await connection.execute("INSERT INTO orcastra.step_results (step_id, result) VALUES (\(second), '{}')")
            _ = try await connection.execute("UPDATE orcastra.steps SET pending_parents = 0 WHERE id = \(second)")
            // A forged log: started before its parent finished, claimed twice, illegal moves.
            _ = try await connection.execute("""
                INSERT INTO orcastra.step_transitions (step_id, task_id, from_state, to_state, attempt, reason) VALUES
                    (\(second), \(damaged), 'pending', 'in_progress', 1, 'forged'),
                    (\(second), \(damaged), 'in_progress', 'in_progress', 2, 'forged'),
                    (\(second), \(damaged), 'in_progress', 'pending', 2, 'forged')
                """)
            // A task declared complete (a legal move) while its steps are not; a gap in its log.
            _ = try await connection.execute("UPDATE orcastra.tasks SET state = 'complete', state_reason = 'forged' WHERE id = \(damaged)")
            _ = try await connection.execute("""
                INSERT INTO orcastra.task_transitions (task_id, from_state, to_state, reason) VALUES (\(damaged), 'error', 'complete', 'forged')
                """)
            // A live task whose state disagrees with its steps, changed behind the triggers' back.
            try await connection.executeSimple("SET session_replication_role = replica")
            _ = try await connection.execute("UPDATE orcastra.tasks SET state = 'error' WHERE id = \(stalled)")
            // A slot freed without starting the next in line; a timed-out task whose step still waits.
            _ = try await connection.execute("UPDATE orcastra.tasks SET state = 'cancelled' WHERE id = \(holder)")
            _ = try await connection.execute("""
                UPDATE orcastra.tasks SET state = 'error', state_reason = 'timed out: forged', finished_at = deadline_at WHERE id = \(overdue)
                """)
            // A fan-out said to have 2 instances that has none (and a for_each that yields no list).
            _ = try await connection.execute("UPDATE orcastra.steps SET for_each = '$.context.items', instances = 2 WHERE task_id = \(stalled) AND name = 'second'")
            // A fan-out in error although none of its instances failed (it has none).
            _ = try await connection.execute("UPDATE orcastra.steps SET for_each = '$.context.items', instances = 1, state = 'error' WHERE task_id = \(damaged) AND name = 'first'")
            // A step skipped with no reason: no when, the default trigger, no skipped parent (and,
            // with the triggers off, left in the queue).
            _ = try await connection.execute("UPDATE orcastra.steps SET state = 'skipped' WHERE task_id = \(stalled) AND name = 'first'")
            // A result whose step does not exist (the reference trigger off).
            _ = try await connection.execute("INSERT INTO orcastra.step_results (step_id, result) VALUES (-7, '{}')")
            try await connection.executeSimple("SET session_replication_role = origin")
            // A second task of key a started (in the log) while the first held the only slot.
            _ = try await connection.execute("""
                INSERT INTO orcastra.task_transitions (task_id, from_state, to_state, reason) VALUES (\(waiter), 'pending', 'in_progress', 'forged')
                """)
            // Two attempts of a step limited to one, running at once (in the log).
            let limitedSteps = try await connection.query("""
                SELECT id, task_id FROM orcastra.steps WHERE task_id IN (\(holder), \(overdue)) ORDER BY id
                """).rows.map { (try $0.decode("id", as: Int64.self), try $0.decode("task_id", as: UUID.self)) }
            for (id, task) in limitedSteps {
                _ = try await connection.execute("""
                    INSERT INTO orcastra.step_transitions (step_id, task_id, from_state, to_state, attempt, reason) VALUES (\(id), \(task), 'enqueued', 'in_progress', 1, 'forged')
                    """)
            }

            // A live task calling itself the sub-workflow of a step that never started one.
            _ = try await connection.execute("""
                UPDATE orcastra.tasks SET parent_step_id = \(second), parent_task_id = \(damaged), workflow_depth = 1 WHERE id = \(waiter)
                """)

            let violations = try await checker.check(on: connection)
            let found = Set(violations.map(\.invariant))
            #expect(found == Set(InvariantChecker.invariants.map(\.name)), "\(violations.map(\.description).joined(separator: "\n"))")
            #expect(violations.allSatisfy { !$0.message.isEmpty && $0.message.hasSuffix(".") })
            #expect(violations.contains { $0.invariant == "parents-before-children" && $0.stepName == "second" && $0.message.contains("first") })
            #expect(violations.contains { $0.invariant == "task-state-matches-steps" && $0.taskID == stalled })
            #expect(violations.contains { $0.invariant == "concurrency-key-limit" && $0.taskID == waiter && $0.message.contains("2 tasks") })
            #expect(violations.contains { $0.invariant == "concurrency-waiting-has-reason" && $0.taskID == waiter })
            #expect(violations.contains { $0.invariant == "task-deadline" && $0.taskID == overdue && $0.stepName == "only" })
            #expect(violations.contains { $0.invariant == "step-concurrency-limit" && $0.taskID == overdue && $0.message.contains("2 attempts") })
            #expect(violations.contains { $0.invariant == "skipped-vs-triggers" && $0.taskID == stalled && $0.stepName == "first" })
            #expect(violations.contains { $0.invariant == "workflow-step-follows-child" && $0.taskID == waiter && $0.stepName == "second" })
            #expect(violations.contains { $0.invariant == "fan-out-instances" && $0.taskID == stalled && $0.stepName == "second" })
            #expect(violations.contains { $0.invariant == "fan-out-failure" && $0.taskID == damaged && $0.stepName == "first" && $0.message.contains("0 failed") })
            #expect(violations.contains { $0.invariant == "owned-rows-have-owners" && $0.stepID == -7 && $0.message.contains("does not exist") })
            // Skipped behind the triggers' back while enqueued: its queue row stayed.
            #expect(violations.contains { $0.invariant == "live-step-tables" && $0.taskID == stalled && $0.stepName == "first" && $0.message.contains("step_queue") })
            // A grace period keeps a task changed within it out of the report. (Not the default 5 s:
            // on a loaded machine this test takes longer than that since the task was created.)
            #expect(!(try await InvariantChecker(settleGrace: .seconds(600)).check(on: connection)).contains { $0.invariant == "task-state-matches-steps" })

            // The command line tool says the same, and exits 1.
            let orcastra = CommandLineTool("orcastra")
            let text = try await orcastra.run(["check"], environment: ["ORCASTRA_DATABASE_URL": cluster.url])
            #expect(text.status == 1, "\(text.output)")
            #expect(text.standardOutput.contains("[results-match-completion] task \(damaged.uuidString.lowercased()), step second (\(second)): It is pending but has a stored result"))
            let json = try await orcastra.run(["check", "--json"], environment: ["ORCASTRA_DATABASE_URL": cluster.url])
            #expect(json.status == 1)
            let object = try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any]
            #expect(object?["tasks"] as? Int == 5)
            #expect(object?["steps"] as? Int == 7)
            #expect((object?["violations"] as? [[String: Any]])?.contains { $0["invariant"] as? String == "pending-parents-count" && $0["step_id"] as? Int == Int(second) } == true)
        }
    }

    @Test func checkCommandOnAHealthyDatabase() async throws {
        try await Reliability.withCluster { cluster in
            try await cluster.register(Self.dag)
            try cluster.worker(namespace: "rel")
            let task = try await cluster.submit("rel/pair")
            #expect(try await cluster.settled(task) == "complete", "\(cluster.logs)")
            let outcome = try await CommandLineTool("orcastra").run(["check"], environment: ["ORCASTRA_DATABASE_URL": cluster.url])
            #expect(outcome.status == 0, "\(outcome.output)")
            #expect(outcome.standardOutput == "All \(InvariantChecker.invariants.count) invariants hold over 1 tasks and 2 steps.\n")
            let json = try await CommandLineTool("orcastra").run(["check", "--json"], environment: ["ORCASTRA_DATABASE_URL": cluster.url])
            #expect(json.status == 0)
            let object = try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any]
            #expect((object?["violations"] as? [Any])?.isEmpty == true, "\(json.output)")
            #expect(object?["invariants"] as? Int == InvariantChecker.invariants.count)
        }
    }

    /// Checks taken while workers and orchestrators are busy see one consistent snapshot each and
    /// report nothing: no false alarm from work in flight.
    @Test func quietOnABusySystem() async throws {
        try await Reliability.withCluster { cluster in
            try await cluster.register(FaultTests.flaky)
            try await cluster.register("""
                namespace: rel
                name: diamond
                version: 1.0.0
                steps:
                  - {name: top, handler: orcastra.noop}
                  - {name: left, handler: orcastra.echo, depends_on: [top]}
                  - {name: right, handler: orcastra.noop, depends_on: [top]}
                  - {name: bottom, handler: orcastra.echo, depends_on: [left, right]}
                """)
            try cluster.orchestrator()
            try cluster.orchestrator()
            try cluster.worker(namespace: "rel", ["--concurrency", "8"])
            try cluster.worker(namespace: "rel", ["--concurrency", "8"])
            let total = 300
            for index in 0..<total { _ = try await cluster.submit(index.isMultiple(of: 3) ? "rel/flaky" : "rel/diamond") }
            let connection = try await PostgresConnection.connect(cluster.url)
            defer { Task { await connection.close() } }
            var checks = 0
            var violations: [InvariantViolation] = []
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                violations += try await InvariantChecker().check(on: connection)
                checks += 1
                // At least twice: on a slow machine one check can outlast the whole run.
                if checks >= 2, try await cluster.count("SELECT count(*) FROM orcastra.tasks WHERE state = 'complete'") == total { break }
            }
            #expect(try await cluster.count("SELECT count(*) FROM orcastra.tasks WHERE state = 'complete'") == total, "\(cluster.logs)")
            #expect(checks > 1)
            #expect(violations.isEmpty, "\(violations.prefix(20).map(\.description).joined(separator: "\n"))")
            try await Reliability.expectInvariantsHold(cluster.url, logs: cluster.logs)
        }
    }
}
