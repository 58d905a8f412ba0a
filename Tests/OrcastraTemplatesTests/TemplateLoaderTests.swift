import Foundation
import Testing
@testable import OrcastraTemplates

@Suite(.timeLimit(.minutes(3))) struct TemplateLoaderTests {
    func temporaryDirectory(files: [String: String]) throws -> String {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("orcastra-templates-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (name, text) in files {
            try text.write(toFile: (directory as NSString).appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return directory
    }

    @Test func loadsEveryYAMLFileInADirectorySorted() throws {
        let templates = try TemplateLoader.load(path: Fixtures.url("good").path)
        #expect(templates.map(\.template.name) == ["diamond", "etl", "linear"])
        #expect(templates[0].file.hasSuffix("good/diamond.yaml"))
        #expect(templates[0].source == (try Fixtures.text("good/diamond.yaml")))
    }

    @Test func loadsASingleFile() throws {
        let templates = try TemplateLoader.load(path: Fixtures.url("good/linear.yaml").path)
        #expect(templates.map(\.template.reference) == ["examples/linear@1.0.0"])
    }

    @Test func collectsErrorsOfAllFilesAndDuplicateIdentities() throws {
        let good = try Fixtures.text("good/linear.yaml")
        let directory = try temporaryDirectory(files: [
            "a.yaml": good,
            "b.yml": good,
            "c.yaml": "namespace: x\nname: y\nversion: 1\nsteps: []\n",
            "notes.txt": "ignored",
        ])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect {
            try TemplateLoader.load(path: directory)
        } throws: { error in
            guard let issues = (error as? TemplateValidationError)?.issues else { return false }
            let duplicate = issues.first { $0.file.hasSuffix("b.yml") }
            return issues.count == 3
                && duplicate?.message.contains("examples/linear@1.0.0 is already declared in") == true
                && duplicate?.line == 4
                && issues.filter { $0.file.hasSuffix("c.yaml") }.count == 2
                && (error as? TemplateValidationError)?.description.hasPrefix("3 errors in 2 files:") == true
        }
    }

    @Test func checkKeepsEveryFileOfSeveralPathsAndNamesMissingOnes() throws {
        let good = try Fixtures.text("good/linear.yaml")
        let directory = try temporaryDirectory(files: ["a.yaml": good, "c.yaml": "namespace: x\nname: y\nversion: 1\nsteps: []\n"])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let a = (directory as NSString).appendingPathComponent("a.yaml")
        let check = TemplateLoader.check(paths: [directory, "/nonexistent/t.yaml", a, Fixtures.url("good/diamond.yaml").path])
        #expect(check.files.map { ($0.file as NSString).lastPathComponent } == ["a.yaml", "c.yaml", "t.yaml", "diamond.yaml"])
        #expect(check.files.map(\.isValid) == [true, false, false, true])
        #expect(check.missingPaths == ["/nonexistent/t.yaml"])
        #expect(check.loaded.map(\.template.reference) == ["examples/linear@1.0.0", "examples/diamond@1.0.0"])
        #expect((try? TemplateLoader.load(paths: [a, a])).map { $0.count } == 1)
    }

    @Test func missingPathIsOneClearIssue() {
        #expect {
            try TemplateLoader.load(path: "/nonexistent/templates")
        } throws: { error in
            (error as? TemplateValidationError)?.issues.first?.message.contains("no such file or directory") == true
        }
    }
}
