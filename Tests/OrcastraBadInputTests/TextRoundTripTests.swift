import Foundation
import OrcastraClient
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

/// Text a user types goes everywhere unchanged: names are restricted, every other string accepts
/// anything PostgreSQL can store (any Unicode except NUL) and comes back byte for byte.
@Suite(.timeLimit(.minutes(5))) struct TextRoundTripTests {
    static let injection = "Robert'); DROP TABLE orcastra.tasks;--"
    static let nasty: [String] = [
        injection, "$1", "$$; SELECT 1; $$", "' OR '1'='1", "𝄞 ünï 中文 🎻", "\u{202E}rtl\u{202C}", "e\u{301} vs é",
        "line\nbreak\ttab\r", "quote\" back\\slash", "%s%n%x", "{{ template }}", "${HOME}", "NULL", "null", "", " ",
        "\u{1}\u{7}\u{1B}[31m", "\\x00", "\\u0000", String(repeating: "長", count: 5_000),
    ]

    /// A JSON string literal, which is also a valid YAML double-quoted scalar.
    static func quoted(_ text: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(text), as: UTF8.self)
    }

    static var template: String {
        let all = nasty.joined(separator: " | ")
        return """
            namespace: text
            name: roundtrip
            version: 1.0.0
            description: \(quoted(all))
            steps:
              - name: first
                description: \(quoted(injection))
                handler: text.first
              - name: second
                depends_on: [first]
                description: \(quoted("𝄞 ünï 中文 🎻"))
                command:
                  argv: [\(nasty.map(quoted).joined(separator: ", "))]
                  env: {EVIL: \(quoted(injection)), UNICODE: \(quoted("𝄞 ünï 中文 🎻")), DOLLAR: "$1"}
                  working_directory: \(quoted("/tmp/𝄞 '; DROP"))
            """
    }

    static var context: JSONValue {
        var object: [String: JSONValue] = [:]
        for (index, text) in nasty.enumerated() {
            object[text.isEmpty ? "empty" : text] = .string(text)
            object["n\(index)"] = .array([.string(text), .object([text: .string(text)])])
        }
        return .object(object)
    }

    @Test func namesRefuseUnicodeAndSQL() {
        let yaml = """
            namespace: text
            name: names
            version: 1.0.0
            steps:
              - {name: café, handler: text.a}
              - {name: "x'; DROP TABLE", handler: text.b}
              - {name: ok, handler: "x'; DROP TABLE orcastra.tasks;--"}
            """
        do {
            _ = try TemplateParser.parse(yaml: yaml, file: "names.yaml")
            Issue.record("invalid names were accepted")
        } catch {
            let messages = error.issues.map(\.message)
            print("name refusals:\n  " + messages.joined(separator: "\n  "))
            #expect(messages.count == 3)
            #expect(messages.contains { $0.hasPrefix("step name 'café' is invalid because it contains 'é'; names must start with a lowercase letter") })
            #expect(messages.contains { $0.hasPrefix("step name 'x'; DROP TABLE' is invalid because it contains '''") && $0.hasSuffix("try 'x_drop_table'") })
            #expect(messages.contains { $0.contains("handler name 'x'; DROP TABLE orcastra.tasks;--' is invalid") })
            #expect(error.issues.allSatisfy { $0.line >= 5 && $0.column >= 1 })
        }
    }

    @Test func anyTextRoundTripsThroughRegisterSubmitAndShow() async throws {
        let database = try await BadInputDatabase()
        let client = OrcastraClient(pool: database.pool)
        defer { Task { [pool = database.pool] in await pool.shutdown() } }
        let yaml = Self.template
        try await database.register(yaml, file: "roundtrip 𝄞 '; --.yaml")

        // The template: description, step description, argv, env and working directory.
        let stored = try await database.registry.find(TemplateReference(parsing: "text/roundtrip"))
        #expect(stored.source == yaml)
        #expect(stored.template.description == Self.nasty.joined(separator: " | "))
        #expect(stored.template.steps[0].description == Self.injection)
        guard case .command(let spec) = stored.template.steps[1].action else {
            Issue.record("second step is not a command")
            return
        }
        #expect(spec.argv == Self.nasty)
        #expect(spec.env == ["EVIL": Self.injection, "UNICODE": "𝄞 ünï 中文 🎻", "DOLLAR": "$1"])
        #expect(spec.workingDirectory == "/tmp/𝄞 '; DROP")

        // The task: context keys and values, idempotency key.
        let request = TaskRequest(template: try TemplateReference(parsing: "text/roundtrip"), context: Self.context,
                                  idempotencyKey: Self.injection + " 𝄞")
        let creation = try await client.submit(request)
        #expect(creation.created)
        let again = try await client.submit(request)
        #expect(!again.created && again.taskID == creation.taskID)

        // A worker's result and error message, through the worker protocol's functions.
        let result: JSONValue = .object(["text": .array(Self.nasty.map(JSONValue.string)), Self.injection: .string("𝄞")])
        let owner = "worker \(Self.injection) 🎻"
        let first = try await claim(database.pool, owner: owner)
        try await database.pool.query("""
            SELECT * FROM orcastra.complete_steps(ARRAY[\(first.id)]::bigint[], ARRAY[\(first.token)]::uuid[],
                                                  ARRAY[\(JSONText(result.jsonText))]::jsonb[])
            """)
        let message = Self.nasty.joined(separator: "\n")
        let second = try await claim(database.pool, owner: owner)
        try await database.pool.query("""
            SELECT * FROM orcastra.fail_steps(ARRAY[\(second.id)]::bigint[], ARRAY[\(second.token)]::uuid[],
                                              ARRAY[\(message)]::text[], ARRAY[NULL]::int[])
            """)

        let detail = try await client.task(creation.taskID)
        #expect(detail.context == Self.context)
        #expect(detail.idempotencyKey == Self.injection + " 𝄞")
        #expect(detail.steps.map(\.name) == ["first", "second"])
        #expect(detail.steps[0].result == result)
        #expect(detail.steps[1].lastError == message)
        #expect(detail.state == .error)
        #expect(detail.error?.contains(Self.injection) == true)
        // A second task, with another key, cancelled with a reason in the same spirit.
        let other = try await client.submit(TaskRequest(template: request.template, idempotencyKey: "$1"))
        #expect(other.created && other.taskID != creation.taskID)
        let cancelled = try await client.cancel(other.taskID, reason: Self.injection + " 中文")
        #expect(cancelled == .cancelled)
        let events = try await client.events(other.taskID)
        #expect(events.contains { $0.reason == Self.injection + " 中文" })

        // Nothing was dropped or altered.
        #expect(try await database.count("SELECT count(*) FROM pg_tables WHERE schemaname = 'orcastra'") >= 8)
        #expect(try await database.count("SELECT count(*) FROM orcastra.tasks") == 2)
        #expect(try await database.count("SELECT count(*) FROM orcastra.steps") == 4)
        #expect(try await database.count("SELECT count(*) FROM orcastra.templates") == 1)
    }

    struct Claim { var id: Int64; var token: UUID }

    func claim(_ pool: PostgresPool, owner: String) async throws -> Claim {
        let rows = try await pool.query("SELECT step_id, lease_token FROM orcastra.claim_steps('text', \(owner), 1, 60000)")
        let row = try #require(rows.first)
        return Claim(id: try row.decode("step_id"), token: try row.decode("lease_token"))
    }

    /// PostgreSQL cannot store NUL in text or jsonb. A NUL must be refused, never silently cut.
    @Test func nulIsRefusedNotTruncated() async throws {
        let database = try await BadInputDatabase()
        let client = OrcastraClient(pool: database.pool)
        defer { Task { [pool = database.pool] in await pool.shutdown() } }
        try await database.register("namespace: text\nname: nul\nversion: 1.0.0\nsteps: [{name: a, handler: text.a}]\n")
        let reference = try TemplateReference(parsing: "text/nul")

        do {
            let made = try await client.submit(TaskRequest(template: reference, context: .object(["a": .string("x\u{0}y")])))
            Issue.record("a context with NUL was stored as task \(made.taskID)")
        } catch {
            // Refused by the store before anything is sent, naming the place (not SQLSTATE 22P05).
            #expect("\(error)".hasPrefix("The context cannot be stored: the string at $.a contains a NUL character"), "\(error)")
        }
        #expect(try await database.writtenRows() == [0, 0, 0, 0, 0])

        // An idempotency key with a NUL: stored cut at the NUL, it would collide with "key".
        _ = try await client.submit(TaskRequest(template: reference, idempotencyKey: "key"))
        let refusal = await #expect(throws: PostgresError.self) {
            try await client.submit(TaskRequest(template: reference, idempotencyKey: "key\u{0}other"))
        }
        #expect(refusal.map { "\($0)" }?.contains("NUL character") == true)
        #expect(try await database.count("SELECT count(*) FROM orcastra.tasks") == 1)
    }
}
