import Foundation
import OrcastraTesting
import Testing

/// `orcastra template validate` and `register` through the built binary: several paths, `--json`
/// in every case, and the documented exit codes.
@Suite(.timeLimit(.minutes(5))) struct TemplateCLITests {
    let orcastra = CommandLineTool("orcastra")

    var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    var templates: String { repositoryRoot.appendingPathComponent("Templates").path }
    var cycle: String { repositoryRoot.appendingPathComponent("Tests/OrcastraTemplatesTests/Fixtures/bad/cycle.yaml").path }
    var good: String { repositoryRoot.appendingPathComponent("Tests/OrcastraTemplatesTests/Fixtures/good/linear.yaml").path }

    func json(_ text: String) throws -> [[String: Any]] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]], "not a JSON array: \(text)")
    }

    func temporaryFolder(_ files: [String: String]) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orcastra-cli-templates-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (name, text) in files {
            try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return directory.path
    }

    @Test func validateTakesSeveralPathsAndReportsEveryProblem() async throws {
        let fine = try await orcastra.run(["template", "validate", "\(templates)/diamond.yaml", "\(templates)/etl.yaml"])
        #expect(fine.status == 0, "\(fine.output)")
        #expect(fine.standardOutput.components(separatedBy: "\n").filter { $0.hasPrefix("ok  ") }.count == 2, "\(fine.output)")
        // A file named twice (here once through its folder) is checked once.
        let repeated = try await orcastra.run(["template", "validate", templates, "\(templates)/linear.yaml"])
        #expect(repeated.status == 0, "\(repeated.output)")
        #expect(repeated.standardOutput.components(separatedBy: "\n").filter { $0.hasPrefix("ok  ") }.count == 3, "\(repeated.output)")

        let mixed = try await orcastra.run(["template", "validate", templates, cycle])
        #expect(mixed.status == 65, "\(mixed.output)")
        #expect(mixed.standardOutput.contains("ok  \(templates)/diamond.yaml: examples/diamond@1.0.0 (4 steps)"), "\(mixed.output)")
        #expect(mixed.standardError.contains("cycle.yaml:6:18: steps[0].depends_on[0]: steps form a dependency cycle"), "\(mixed.output)")

        // The same template in two files is reported, as within one folder.
        let twice = try await orcastra.run(["template", "validate", templates, good])
        #expect(twice.status == 65, "\(twice.output)")
        #expect(twice.standardError.contains("examples/linear@1.0.0 is already declared in \(templates)/linear.yaml"), "\(twice.output)")
    }

    /// `when:` and `trigger:` are checked offline (no database configured): each problem at its
    /// line and column, exit 65.
    @Test func validateChecksConditionsAndTriggersOffline() async throws {
        let folder = try temporaryFolder(["cond.yaml": """
            namespace: shop
            name: cond
            version: 1.0.0
            steps:
              - {name: split, handler: shop.split}
              - name: refund
                depends_on: [split]
                when: "$.parents.split.failed = 0"
                trigger: one_sucess
                handler: shop.refund
            """])
        let outcome = try await orcastra.run(["template", "validate", "\(folder)/cond.yaml"])
        #expect(outcome.status == 65, "\(outcome.output)")
        #expect(outcome.standardError.contains("cond.yaml:8:35: steps[1].when: when of step 'refund' is not a valid jsonpath: '=' is not an operator in jsonpath; compare with '=='"), "\(outcome.output)")
        #expect(outcome.standardError.contains("cond.yaml:9:14: steps[1].trigger: unknown trigger 'one_sucess'; did you mean 'one_success'?"), "\(outcome.output)")
    }

    @Test func validateNamesAMissingPathAndExitsSixtySix() async throws {
        let missing = try await orcastra.run(["template", "validate", templates, "/nonexistent/etl.yaml", cycle])
        #expect(missing.status == 66, "\(missing.output)")
        #expect(missing.standardError.contains("/nonexistent/etl.yaml: no such file or directory; check the path"), "\(missing.output)")
        // The other paths are still checked.
        #expect(missing.standardError.contains("cycle.yaml:6:18"), "\(missing.output)")
        #expect(missing.standardOutput.contains("ok  \(templates)/etl.yaml"), "\(missing.output)")
        let alone = try await orcastra.run(["template", "validate", "/nonexistent/etl.yaml"])
        #expect(alone.status == 66, "\(alone.output)")
    }

    @Test func validateJSONIsPrintedWhetherValidOrNot() async throws {
        let valid = try await orcastra.run(["template", "validate", "--json", good])
        #expect(valid.status == 0, "\(valid.output)")
        let entry = try #require(try json(valid.standardOutput).first)
        #expect(entry["file"] as? String == good)
        #expect(entry["valid"] as? Bool == true)
        #expect(entry["template"] as? String == "examples/linear@1.0.0")
        #expect(entry["version"] as? String == "1.0.0")
        #expect(entry["steps"] as? Int == 4)
        #expect((entry["issues"] as? [Any])?.isEmpty == true)

        let invalid = try await orcastra.run(["template", "validate", "--json", good, cycle, "/nonexistent/x.yaml"])
        #expect(invalid.status == 66, "\(invalid.output)")
        let entries = try json(invalid.standardOutput)
        #expect(entries.map { $0["file"] as? String } == [good, cycle, "/nonexistent/x.yaml"])
        #expect(entries.map { $0["valid"] as? Bool } == [true, false, false])
        #expect(entries[1]["template"] is NSNull)
        let issue = try #require((entries[1]["issues"] as? [[String: Any]])?.first)
        #expect(issue["line"] as? Int == 6)
        #expect(issue["column"] as? Int == 18)
        #expect(issue["path"] as? String == "steps[0].depends_on[0]")
        #expect((issue["message"] as? String)?.hasPrefix("steps form a dependency cycle") == true)
        let missing = try #require((entries[2]["issues"] as? [[String: Any]])?.first)
        #expect(missing["line"] is NSNull)
        #expect(missing["message"] as? String == "no such file or directory; check the path")

        let onlyInvalid = try await orcastra.run(["template", "validate", "--json", cycle])
        #expect(onlyInvalid.status == 65, "\(onlyInvalid.output)")
        #expect(try json(onlyInvalid.standardOutput).first?["valid"] as? Bool == false)
    }

    @Test func registerJSONSaysWhatWasRegisteredUnchangedOrRefused() async throws {
        let url = try await TestDatabases.shared.makeDatabase()
        let first = try await orcastra.run(["template", "register", templates, "--json", "--database-url", url])
        #expect(first.status == 0, "\(first.output)")
        let registered = try json(first.standardOutput)
        #expect(registered.map { $0["template"] as? String } == ["examples/diamond@1.0.0", "examples/etl@1.0.0", "examples/linear@1.0.0"])
        #expect(registered.allSatisfy { $0["outcome"] as? String == "registered" && $0["version"] as? String == "1.0.0" && $0["error"] is NSNull })
        let ids = registered.compactMap { $0["id"] as? Int }
        #expect(ids.count == 3)

        let conflicting = try temporaryFolder([
            "linear.yaml": "namespace: examples\nname: linear\nversion: 1.0.0\nsteps: [{name: only, handler: orcastra.noop}]\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: conflicting) }
        let again = try await orcastra.run(["template", "register", "\(templates)/diamond.yaml", conflicting, "--json", "--database-url", url])
        #expect(again.status == 75, "\(again.output)")
        let outcomes = try json(again.standardOutput)
        #expect(outcomes.map { $0["outcome"] as? String } == ["unchanged", "refused"])
        #expect(outcomes[0]["id"] as? Int == ids[0])
        #expect(outcomes[1]["id"] is NSNull)
        #expect((outcomes[1]["error"] as? String)?.hasPrefix("Template examples/linear@1.0.0 is already registered with different content") == true)
        #expect(again.standardError.contains("1 template(s) not registered because of version conflicts"), "\(again.output)")

        // An invalid file registers nothing, and the JSON says so for each file.
        let invalid = try await orcastra.run(["template", "register", good, cycle, "--json", "--database-url", url])
        #expect(invalid.status == 65, "\(invalid.output)")
        #expect(try json(invalid.standardOutput).map { $0["outcome"] as? String } == ["skipped", "invalid"])
    }
}
