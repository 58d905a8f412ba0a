import Foundation
import OrcastraPostgres
import OrcastraTesting
import Testing

/// `template default`, `template deprecate` and `template diff` through the built binary, and the
/// rule for a reference without a version: the default version when one is set, else the highest
/// release that is not deprecated — the same in Swift (`orcastra submit`) and SQL (create_task_by_name).
@Suite(.timeLimit(.minutes(5))) struct TemplateLifecycleTests {
    let orcastra = CommandLineTool("orcastra")

    struct Run: Sendable {
        var status: Int32
        var standardOutput: String
        var standardError: String
        var output: String { standardOutput + standardError }
    }

    func run(_ arguments: [String], _ url: String) async throws -> Run {
        let outcome = try await orcastra.run(arguments + ["--database-url", url])
        return Run(status: outcome.status, standardOutput: outcome.standardOutput, standardError: outcome.standardError)
    }

    func object(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
    }

    func array(_ text: String) throws -> [[String: Any]] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]], "not a JSON array: \(text)")
    }

    static func app(_ version: String, steps: String = "  - {name: only, handler: rel.only}\n") -> String {
        "namespace: rel\nname: app\nversion: \(version)\nsteps:\n" + steps
    }

    /// A migrated database with `rel/app` at the given versions, and a pool on it.
    func database(_ files: [String: String]) async throws -> (url: String, pool: PostgresPool) {
        let url = try await TestDatabases.shared.makeDatabase()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("orcastra-lifecycle-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for (name, text) in files {
            try text.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let register = try await run(["template", "register", folder.path], url)
        #expect(register.status == 0, "\(register.output)")
        return (url, PostgresPool(conninfo: url, maximumConnections: 2))
    }

    func versions(_ list: [String]) -> [String: String] {
        Dictionary(uniqueKeysWithValues: list.map { ("app-\($0).yaml", Self.app($0)) })
    }

    /// The version `orcastra submit rel/app` takes, or its exit status and message.
    func submitted(_ url: String, _ reference: String = "rel/app", _ extra: [String] = []) async throws -> String {
        let submit = try await run(["submit", reference, "--json"] + extra, url)
        guard submit.status == 0 else { return "exit \(submit.status)" }
        let template = try #require(try object(submit.standardOutput)["template"] as? String, "\(submit.output)")
        return String(template.split(separator: "@").last ?? "")
    }

    /// The version `orcastra.create_task_by_name('rel', 'app')` takes, or the SQLSTATE it raises.
    func viaSQL(_ pool: PostgresPool, version: String? = nil, allowDeprecated: Bool = false) async throws -> String {
        do {
            let row = try await pool.query("""
                SELECT template_version FROM orcastra.create_task_by_name('rel', 'app', \(version), p_allow_deprecated => \(allowDeprecated))
                """).first!
            return try row.decode("template_version")
        } catch let error as PostgresError {
            return "SQLSTATE \(error.sqlState ?? "?")"
        }
    }

    @Test func theDefaultVersionIsWhatUnpinnedReferencesTake() async throws {
        let (url, pool) = try await database(versions(["1.9.0", "1.10.0", "2.0.0-rc.1"]))
        defer { Task { await pool.shutdown() } }

        let before = try await run(["template", "default", "rel/app", "--json"], url)
        #expect(before.status == 0, "\(before.output)")
        let shown = try object(before.standardOutput)
        #expect(shown["template"] as? String == "rel/app")
        #expect(shown["default_version"] is NSNull)
        #expect(shown["unpinned_version"] as? String == "1.10.0")
        #expect(try await submitted(url) == "1.10.0")

        let set = try await run(["template", "default", "rel/app", "1.9.0"], url)
        #expect(set.status == 0, "\(set.output)")
        #expect(set.standardOutput.contains("rel/app: the default version is now 1.9.0 (it was not set)"), "\(set.output)")
        #expect(try await submitted(url) == "1.9.0")
        #expect(try await viaSQL(pool) == "1.9.0")
        // A pinned reference is not affected.
        #expect(try await submitted(url, "rel/app@1.10.0") == "1.10.0")
        // `template show` without a version shows the default, and says it is.
        let show = try await run(["template", "show", "rel/app"], url)
        #expect(show.standardOutput.hasPrefix("rel/app@1.9.0  (1 step, registered "), "\(show.output)")
        #expect(show.standardOutput.contains("Default: yes, set with `orcastra template default`"), "\(show.output)")
        let showJSON = try object(try await run(["template", "show", "rel/app", "--json"], url).standardOutput)
        #expect(showJSON["version"] as? String == "1.9.0")
        let registry = try #require(showJSON["registry"] as? [String: Any], "\(showJSON)")
        #expect(registry["default"] as? Bool == true && registry["unpinned"] as? Bool == true && registry["deprecated"] as? Bool == false)
        #expect(registry["id"] is Int && registry["step_count"] as? Int == 1, "\(registry)")

        // The list marks it, in JSON and for people.
        let listed = try array(try await run(["template", "list", "--json"], url).standardOutput)
        #expect(listed.map { $0["version"] as? String } == ["1.9.0", "1.10.0", "2.0.0-rc.1"])
        #expect(listed.map { $0["default"] as? Bool } == [true, false, false])
        #expect(listed.map { $0["unpinned"] as? Bool } == [true, false, false])
        #expect(listed.allSatisfy { $0["step_count"] as? Int == 1 && $0["deprecated"] as? Bool == false })
        let table = try await run(["template", "list"], url)
        #expect(table.standardOutput.contains("STATUS"), "\(table.output)")
        let line = try #require(table.standardOutput.split(separator: "\n").first { $0.hasPrefix("rel/app@1.9.0 ") })
        #expect(line.contains("  default"), "\(table.output)")

        // A prerelease can be made the default: an explicit choice.
        #expect(try await run(["template", "default", "rel/app@2.0.0-rc.1"], url).status == 0)
        #expect(try await submitted(url) == "2.0.0-rc.1")
        #expect(try await viaSQL(pool) == "2.0.0-rc.1")

        // Unknown versions and templates: 66, naming what is registered.
        let unknown = try await run(["template", "default", "rel/app", "3.0.0"], url)
        #expect(unknown.status == 66, "\(unknown.output)")
        #expect(unknown.standardError.contains("No template rel/app@3.0.0 is registered. Did you mean rel/app@"), "\(unknown.output)")
        let nothing = try await run(["template", "default", "rel/nope", "--clear"], url)
        #expect(nothing.status == 66, "\(nothing.output)")
        let both = try await run(["template", "default", "rel/app", "1.9.0", "--clear"], url)
        #expect(both.status == 64, "\(both.output)")
        let twice = try await run(["template", "default", "rel/app@1.9.0", "1.10.0"], url)
        #expect(twice.status == 64, "\(twice.output)")

        // --clear goes back to the highest release.
        let clear = try await run(["template", "default", "rel/app", "--clear", "--json"], url)
        #expect(clear.status == 0, "\(clear.output)")
        let cleared = try object(clear.standardOutput)
        #expect(cleared["default_version"] is NSNull && cleared["previous_default_version"] as? String == "2.0.0-rc.1", "\(cleared)")
        #expect(cleared["unpinned_version"] as? String == "1.10.0")
        #expect(try await submitted(url) == "1.10.0")
        #expect(try await viaSQL(pool) == "1.10.0")
    }

    @Test func aDeprecatedVersionRunsOnlyWhenPinnedAndAllowed() async throws {
        let (url, pool) = try await database(versions(["1.9.0", "1.10.0"]))
        defer { Task { await pool.shutdown() } }
        // A task made before the deprecation.
        let earlier = try object(try await run(["submit", "rel/app", "--json"], url).standardOutput)
        let earlierID = try #require(earlier["task_id"] as? String)

        let deprecate = try await run(["template", "deprecate", "rel/app@1.10.0", "--reason", "retries too eagerly", "--json"], url)
        #expect(deprecate.status == 0, "\(deprecate.output)")
        let deprecation = try object(deprecate.standardOutput)
        #expect(deprecation["template"] as? String == "rel/app@1.10.0")
        #expect(deprecation["deprecated"] as? Bool == true && deprecation["changed"] as? Bool == true)
        #expect(deprecation["deprecation_reason"] as? String == "retries too eagerly")
        #expect(deprecation["deprecated_at"] is String)
        #expect(deprecation["unpinned_version"] as? String == "1.9.0")
        // Again: nothing changes, and it says so.
        let again = try await run(["template", "deprecate", "rel/app@1.10.0"], url)
        #expect(again.status == 0 && again.standardOutput.contains("rel/app@1.10.0 was already deprecated"), "\(again.output)")

        // Unpinned references skip it, in Swift and SQL.
        #expect(try await submitted(url) == "1.9.0")
        #expect(try await viaSQL(pool) == "1.9.0")
        // Pinned: refused unless allowed.
        let refused = try await run(["submit", "rel/app@1.10.0"], url)
        #expect(refused.status == 75, "\(refused.output)")
        #expect(refused.standardError.contains("rel/app@1.10.0 is deprecated (since "), "\(refused.output)")
        #expect(refused.standardError.contains(": retries too eagerly): new tasks are refused."), "\(refused.output)")
        #expect(refused.standardError.contains("Submit rel/app (it takes 1.9.0)"), "\(refused.output)")
        #expect(refused.standardError.contains("orcastra submit rel/app@1.10.0 --allow-deprecated"), "\(refused.output)")
        #expect(try await submitted(url, "rel/app@1.10.0", ["--allow-deprecated"]) == "1.10.0")
        #expect(try await viaSQL(pool, version: "1.10.0") == "SQLSTATE OR004")
        #expect(try await viaSQL(pool, version: "1.10.0", allowDeprecated: true) == "1.10.0")
        // --allow-deprecated needs a version: an unpinned reference never takes a deprecated one.
        let unpinned = try await run(["submit", "rel/app", "--allow-deprecated"], url)
        #expect(unpinned.status == 64 && unpinned.standardError.contains("--allow-deprecated applies to a pinned version"), "\(unpinned.output)")

        // The task made before still runs.
        let claimed = try await pool.query("SELECT step_id, lease_token, task_id FROM orcastra.claim_steps('rel', 'lifecycle-test', 10, 60000)")
        let earlierStep = try #require(claimed.rows.first { (try? $0.decode("task_id", as: UUID.self))?.uuidString.lowercased() == earlierID })
        let outcome = try await pool.query("""
            SELECT outcome FROM orcastra.complete_steps(ARRAY[\(try earlierStep.decode("step_id", as: Int64.self))]::bigint[],
                                                        ARRAY[\(try earlierStep.decode("lease_token", as: UUID.self))]::uuid[], ARRAY['{}']::jsonb[])
            """)
        #expect(try outcome.first?.decode("outcome", as: String.self) == "completed")

        // Listed and shown as deprecated.
        let listed = try array(try await run(["template", "list", "--json"], url).standardOutput)
        #expect(listed.map { $0["deprecated"] as? Bool } == [false, true])
        #expect(listed[1]["deprecation_reason"] as? String == "retries too eagerly")
        #expect(listed.map { $0["unpinned"] as? Bool } == [true, false])
        let table = try await run(["template", "list"], url)
        let line = try #require(table.standardOutput.split(separator: "\n").first { $0.hasPrefix("rel/app@1.10.0 ") })
        #expect(line.contains("deprecated"), "\(table.output)")
        let show = try await run(["template", "show", "rel/app@1.10.0"], url)
        #expect(show.status == 0 && show.standardOutput.contains("Deprecated since "), "\(show.output)")
        #expect(show.standardOutput.contains("retries too eagerly"), "\(show.output)")

        // A deprecated version cannot be the default, and the default cannot be deprecated.
        let defaulted = try await run(["template", "default", "rel/app", "1.10.0"], url)
        #expect(defaulted.status == 75, "\(defaulted.output)")
        #expect(defaulted.standardError.contains("rel/app@1.10.0 is deprecated, and a deprecated version cannot be the default"), "\(defaulted.output)")
        #expect(defaulted.standardError.contains("orcastra template deprecate rel/app@1.10.0 --undo"), "\(defaulted.output)")
        #expect(try await run(["template", "default", "rel/app", "1.9.0"], url).status == 0)
        let theDefault = try await run(["template", "deprecate", "rel/app@1.9.0"], url)
        #expect(theDefault.status == 75, "\(theDefault.output)")
        #expect(theDefault.standardError.contains("rel/app@1.9.0 is the default version"), "\(theDefault.output)")
        #expect(theDefault.standardError.contains("orcastra template default rel/app --clear"), "\(theDefault.output)")
        #expect(try await pool.query("SELECT deprecated_at IS NULL AS live FROM orcastra.templates WHERE version = '1.9.0'").first!.decode("live", as: Bool.self))

        // Bad references: a version is needed (65); unknown ones are named (66).
        let noVersion = try await run(["template", "deprecate", "rel/app"], url)
        #expect(noVersion.status == 65 && noVersion.standardError.contains("rel/app@VERSION"), "\(noVersion.output)")
        let unknown = try await run(["template", "deprecate", "rel/app@7.0.0"], url)
        #expect(unknown.status == 66 && unknown.standardError.contains("No template rel/app@7.0.0 is registered"), "\(unknown.output)")

        // Lifting it: unpinned references take it again once no default is set.
        let undo = try await run(["template", "deprecate", "rel/app@1.10.0", "--undo"], url)
        #expect(undo.status == 0 && undo.standardOutput.contains("rel/app@1.10.0 is no longer deprecated"), "\(undo.output)")
        #expect(try await run(["template", "default", "rel/app", "--clear"], url).status == 0)
        #expect(try await submitted(url) == "1.10.0")

        // Every release deprecated and no default: an unpinned reference has nothing to take (66).
        #expect(try await run(["template", "deprecate", "rel/app@1.10.0"], url).status == 0)
        #expect(try await run(["template", "deprecate", "rel/app@1.9.0"], url).status == 0)
        let none = try await run(["submit", "rel/app"], url)
        #expect(none.status == 66, "\(none.output)")
        #expect(none.standardError.contains("rel/app has no release that is not deprecated (1.9.0 deprecated, 1.10.0 deprecated)"), "\(none.output)")
        #expect(try await viaSQL(pool) == "SQLSTATE OR003")
    }

    /// One sequence of registrations, defaults and deprecations; after each, `orcastra submit
    /// rel/app` (Swift) and `create_task_by_name('rel', 'app')` (SQL) must take the same version.
    @Test func swiftAndSQLTakeTheSameVersion() async throws {
        let (url, pool) = try await database(versions(["0.1.0-beta.1"]))
        defer { Task { await pool.shutdown() } }
        func register(_ version: String) async throws {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("app-\(UUID().uuidString).yaml")
            try Self.app(version).write(to: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: file) }
            #expect(try await run(["template", "register", file.path], url).status == 0)
        }
        let steps: [(String, () async throws -> Void, String)] = [
            ("prereleases only", {}, "exit 66"),
            ("a prerelease as default", { _ = try await run(["template", "default", "rel/app", "0.1.0-beta.1"], url) }, "0.1.0-beta.1"),
            ("a release beside the default", { try await register("1.0.0") }, "0.1.0-beta.1"),
            ("default cleared", { _ = try await run(["template", "default", "rel/app", "--clear"], url) }, "1.0.0"),
            ("higher releases", { try await register("1.2.0"); try await register("1.10.0"); try await register("2.0.0-rc.1") }, "1.10.0"),
            ("highest deprecated", { _ = try await run(["template", "deprecate", "rel/app@1.10.0"], url) }, "1.2.0"),
            ("an older default", { _ = try await run(["template", "default", "rel/app", "1.0.0"], url) }, "1.0.0"),
            ("next one deprecated", { _ = try await run(["template", "deprecate", "rel/app@1.2.0"], url) }, "1.0.0"),
            ("default cleared again", { _ = try await run(["template", "default", "rel/app", "--clear"], url) }, "1.0.0"),
            ("every release deprecated", { _ = try await run(["template", "deprecate", "rel/app@1.0.0"], url) }, "exit 66"),
            ("one lifted", { _ = try await run(["template", "deprecate", "rel/app@1.10.0", "--undo"], url) }, "1.10.0"),
        ]
        for (label, change, expected) in steps {
            try await change()
            let swift = try await submitted(url)
            let sql = try await viaSQL(pool)
            #expect(swift == expected, "\(label): orcastra submit took \(swift)")
            #expect(sql == (expected == "exit 66" ? "SQLSTATE OR003" : expected), "\(label): create_task_by_name took \(sql)")
            let shown = try object(try await run(["template", "default", "rel/app", "--json"], url).standardOutput)
            #expect((shown["unpinned_version"] as? String ?? "exit 66") == expected, "\(label): template default says \(shown)")
        }
    }

    static let before = """
        namespace: rel
        name: app
        version: 1.0.0
        description: Charge, then ship.
        input_schema: {type: object, required: [order_id], properties: {order_id: {type: integer}}}
        steps:
          - {name: charge, handler: rel.charge}
          - {name: legacy, handler: rel.legacy, depends_on: [charge]}
          - {name: ship, command: [ship, --fast], depends_on: [legacy]}
        """

    static let after = """
        namespace: rel
        name: app
        version: 1.1.0
        description: Charge, then ship.
        input_schema: {type: object, required: [order_id], properties: {order_id: {type: string}}}
        steps:
          - {name: charge, handler: rel.charge_v2, retry: {max_attempts: 5}, timeout: 30s}
          - {name: ship, command: {argv: [ship, --fast], env: {CARRIER: dhl}}, depends_on: [charge], namespace: shipping}
          - {name: notify, handler: rel.notify, depends_on: [ship]}
        """

    @Test func diffShowsWhatChangedStepByStep() async throws {
        let (url, pool) = try await database(["a.yaml": Self.before, "b.yaml": Self.after, "c.yaml": Self.app("2.0.0")])
        defer { Task { await pool.shutdown() } }
        let diff = try await run(["template", "diff", "rel/app@1.0.0", "rel/app@1.1.0"], url)
        #expect(diff.status == 1, "\(diff.output)")
        #expect(diff.standardError.isEmpty, "\(diff.output)")
        let expected = """
            --- rel/app@1.0.0
            +++ rel/app@1.1.0
            ~ input_schema.properties.order_id.type: "integer" → "string"
            + step notify: handler: rel.notify, depends_on: [ship]
            - step legacy
            ~ step charge
                handler: rel.charge → rel.charge_v2
                retry.max_attempts: 3 → 5
                timeout: 5m → 30s
            ~ step ship
                command.env.CARRIER: (none) → "dhl"
                depends_on: [legacy] → [charge]
                namespace: rel → shipping
            1 step added, 1 removed, 2 changed; 1 change outside the steps.

            """
        #expect(diff.standardOutput == expected, "\(diff.output)")

        let json = try await run(["template", "diff", "rel/app@1.0.0", "rel/app@1.1.0", "--json"], url)
        #expect(json.status == 1, "\(json.output)")
        let answer = try object(json.standardOutput)
        #expect(answer["from"] as? String == "rel/app@1.0.0" && answer["to"] as? String == "rel/app@1.1.0")
        #expect(answer["identical"] as? Bool == false)
        #expect(answer["steps_added"] as? [String] == ["notify"])
        #expect(answer["steps_removed"] as? [String] == ["legacy"])
        let changes = try #require(answer["changes"] as? [[String: Any]])
        #expect(changes.map { $0["field"] as? String } == ["input_schema.properties.order_id.type"])
        let changed = try #require(answer["steps_changed"] as? [[String: Any]])
        #expect(changed.map { $0["step"] as? String } == ["charge", "ship"])
        let charge = try #require(changed[0]["changes"] as? [[String: Any]])
        #expect(charge.map { $0["field"] as? String } == ["handler", "retry.max_attempts", "timeout_ms"])
        #expect(charge[1]["from"] as? Int == 3 && charge[1]["to"] as? Int == 5)
        #expect(charge[2]["from"] as? Int == 300_000 && charge[2]["to"] as? Int == 30_000)
        let ship = try #require(changed[1]["changes"] as? [[String: Any]])
        #expect(ship[0]["field"] as? String == "command.env.CARRIER" && ship[0]["from"] is NSNull && ship[0]["to"] as? String == "dhl")

        // The same definition: exit 0, in both forms.
        let same = try await run(["template", "diff", "rel/app@1.0.0", "rel/app@1.0.0"], url)
        #expect(same.status == 0 && same.standardOutput == "rel/app@1.0.0 and rel/app@1.0.0 have the same definition.\n", "\(same.output)")
        let sameJSON = try await run(["template", "diff", "rel/app@1.1.0", "rel/app@1.1.0", "--json"], url)
        #expect(sameJSON.status == 0)
        #expect(try object(sameJSON.standardOutput)["identical"] as? Bool == true)
        // An unpinned side is the version unpinned references take.
        let unpinned = try await run(["template", "diff", "rel/app@1.1.0", "rel/app", "--json"], url)
        #expect(try object(unpinned.standardOutput)["to"] as? String == "rel/app@2.0.0", "\(unpinned.output)")
        let unknown = try await run(["template", "diff", "rel/app@1.0.0", "rel/app@9.0.0"], url)
        #expect(unknown.status == 66 && unknown.standardError.contains("No template rel/app@9.0.0 is registered"), "\(unknown.output)")
        let malformed = try await run(["template", "diff", "rel/app@1.0.0", "app"], url)
        #expect(malformed.status == 65, "\(malformed.output)")
    }
}
