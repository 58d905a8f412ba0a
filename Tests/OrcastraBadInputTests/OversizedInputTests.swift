import Foundation
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

/// The documented size limits (docs/limits.md): a context over 1 MiB is refused before anything is
/// written; a command's stdout over 1 MiB fails the step for good; only the last 16 KiB of stderr
/// is kept as the error.
@Suite(.timeLimit(.minutes(5))) struct OversizedInputTests {
    static let single = "namespace: size\nname: single\nversion: 1.0.0\nsteps: [{name: a, handler: size.a}]\n"

    /// `{"blob":"…"}` whose compact JSON text is exactly `bytes` long.
    static func context(bytes: Int, filler: String = "a") -> JSONValue {
        let overhead = #"{"blob":""}"#.utf8.count
        let count = (bytes - overhead) / filler.utf8.count
        let value: JSONValue = .object(["blob": .string(String(repeating: filler, count: count))])
        return value
    }

    @Test func contextOverOneMebibyteIsRefusedAndNothingWritten() async throws {
        let database = try await BadInputDatabase()
        defer { Task { [pool = database.pool] in await pool.shutdown() } }
        try await database.register(Self.single)
        let stored = try await database.registry.find(TemplateReference(parsing: "size/single"))
        let limit = StoreLimits.maximumContextBytes
        #expect(limit == 1_048_576)

        for (label, context) in [("limit + 1 byte", Self.context(bytes: limit + 1)),
                                 ("600,000 × 'é' (1.2 MB, 600,000 characters)", Self.context(bytes: 1_200_012, filler: "é")),
                                 ("10 MiB", Self.context(bytes: 10 << 20))] {
            #expect(context.jsonText.utf8.count > limit)
            do {
                let made = try await database.creator.create(TaskRequest(template: stored.template.reference.asReference, context: context), from: stored)
                Issue.record("\(label): accepted as task \(made.taskID)")
            } catch let error as StoreError {
                guard case .contextTooLarge(let bytes, let reported) = error else {
                    Issue.record("\(label): wrong error \(error)")
                    continue
                }
                print("context of \(label): \(error)")
                #expect(bytes == context.jsonText.utf8.count && reported == limit)
                #expect(error.description.contains("more than the limit of 1048576 bytes (1 MiB); nothing was written"))
            }
            #expect(try await database.writtenRows() == [0, 0, 0, 0, 0], "\(label)")
        }

        // Exactly at the limit is fine, and is stored whole.
        let atLimit = Self.context(bytes: limit)
        #expect(atLimit.jsonText.utf8.count == limit)
        let made = try await database.creator.create(TaskRequest(template: stored.template.reference.asReference, context: atLimit), from: stored)
        #expect(try await database.count("SELECT octet_length(context::text) FROM orcastra.tasks WHERE id = \(made.taskID)") >= limit)
    }

    static let commands = """
        namespace: size
        name: commands
        version: 1.0.0
        defaults:
          retry: {max_attempts: 3, backoff: none}
        steps:
          - name: huge_stdout
            command: [python3, -c, "import sys; sys.stdout.write('\\"' + 'a' * (2 << 20) + '\\"')"]
          - name: noisy_stderr
            retry: {max_attempts: 1}
            command: [python3, -c, "import sys\\nfor i in range(920): sys.stderr.write('line %06d ' % i + 'x' * 100 + '\\\\n')\\nsys.exit(1)"]
        """

    @Test func commandOutputLimitsWithARealWorker() async throws {
        try await withCluster { cluster in
            try await cluster.register(Self.commands)
            try cluster.orchestrator()
            try cluster.worker(namespace: "size")
            let start = ContinuousClock.now
            let task = try await cluster.submit("size/commands")
            let state = try await cluster.settled(task, within: .seconds(60))
            print("oversized command output: task settled \(state) in \(seconds(since: start))")
            #expect(state == "error", "\(cluster.logs)")

            // 2 MiB on stdout: failed for good on the first attempt, with the limit in the message.
            let huge = try await cluster.stepRow(task, step: "huge_stdout")
            let hugeError = try huge.decode("last_error", as: String?.self) ?? ""
            print("2 MiB stdout → \(try huge.decode("state", as: String.self)), attempts \(try huge.decode("attempts", as: Int.self)): \(hugeError)")
            #expect(try huge.decode("state", as: String.self) == "error")
            #expect(try huge.decode("attempts", as: Int.self) == 1)
            #expect(hugeError == "the command's output passed the result limit of 1048576 bytes")
            #expect(try await cluster.result(task, step: "huge_stdout") == nil)

            // ~100 KiB of stderr: only the tail is kept.
            let noisy = try await cluster.stepRow(task, step: "noisy_stderr")
            let noisyError = try noisy.decode("last_error", as: String?.self) ?? ""
            print("100 KiB stderr → last_error of \(noisyError.utf8.count) bytes, starting \(noisyError.prefix(60).debugDescription)")
            #expect(noisyError.hasPrefix("the command exited 1: "))
            #expect(noisyError.utf8.count <= (16 << 10) + "the command exited 1: ".utf8.count)
            #expect(noisyError.utf8.count > 15 << 10)
            #expect(noisyError.hasSuffix("line 000919 " + String(repeating: "x", count: 100)))
            #expect(!noisyError.contains("line 000000"))
        }
    }

    /// The largest timeout a template accepts (720h, `TemplateDuration.maximum`) must not overflow
    /// anything in the worker. (Int64.max milliseconds used to be accepted; it is refused now.)
    @Test func largestTimeoutDoesNotBreakTheWorker() async throws {
        try await withCluster { cluster in
            try await cluster.register("""
                namespace: forever
                name: timeout
                version: 1.0.0
                steps:
                  - {name: a, command: [sh, -c, "echo 1"], timeout: 720h}
                  - {name: b, handler: orcastra.noop, timeout: 720h, depends_on: [a]}
                """)
            try cluster.orchestrator()
            let worker = try cluster.worker(namespace: "forever")
            let task = try await cluster.submit("forever/timeout")
            let state = try await cluster.settled(task, within: .seconds(30))
            let alive = await worker.wait(timeout: .zero) == nil
            print("timeout of 720h: task \(state), worker alive: \(alive), steps \(try await cluster.steps(task))")
            #expect(state == "complete", "\(cluster.logs)")
            #expect(alive, "\(cluster.logs)")
        }
    }
}

extension String {
    /// `namespace/name@version` back to a reference.
    var asReference: TemplateReference { try! TemplateReference(parsing: self) }
}
