import Foundation
import Testing
@testable import OrcastraTemplates

@Suite(.timeLimit(.minutes(3))) struct DAGTests {
    static func diamond() throws -> WorkflowTemplate {
        try TemplateParser.parse(yaml: try Fixtures.text("good/diamond.yaml"), file: "diamond.yaml")
    }

    @Test func graphQueries() throws {
        let template = try Self.diamond()
        #expect(template.topologicalOrder() == ["start", "left", "right", "join"])
        #expect(template.roots == ["start"])
        #expect(template.leaves == ["join"])
        #expect(template.children(of: "start") == ["left", "right"])
        #expect(template.children(of: "join") == [])
    }

    /// Ready steps come out in declaration order, not name order.
    @Test func topologicalOrderIsStable() throws {
        let template = try Fixtures.template("""
            namespace: shop
            name: order
            version: 1.0.0
            steps:
              - {name: z, handler: h.z}
              - {name: y, handler: h.y, depends_on: [x]}
              - {name: x, handler: h.x}
              - {name: w, handler: h.w, depends_on: [z]}
            """)
        #expect(template.topologicalOrder() == ["z", "x", "y", "w"])
    }

    @Test func rendersTheDiamond() throws {
        let expected = """
            examples/diamond@1.0.0 (4 steps)
              start                 handler: examples.start  retry 3×exponential 1s..5m  timeout 5m
              left   ← start        handler: examples.left   retry 3×exponential 1s..5m  timeout 5m
              right  ← start        handler: examples.right  retry 5×fixed 2s            timeout 5m
              join   ← left, right  handler: examples.join   retry 3×exponential 1s..5m  timeout 1m
            """
        #expect(try Self.diamond().renderDAG() == expected)
    }

    static func chainYAML(_ count: Int) -> String {
        var yaml = "namespace: big\nname: chain\nversion: 1.0.0\nsteps:\n"
        for i in 0..<count {
            yaml += "  - name: s\(i)\n    handler: big.step\n"
            if i > 0 { yaml += "    depends_on: [s\(i - 1)]\n" }
        }
        return yaml
    }

    /// A 1,000-deep chain parses quickly and without deep recursion.
    @Test func parsesAThousandStepChainQuickly() throws {
        let clock = ContinuousClock()
        var template: WorkflowTemplate?
        let elapsed = try clock.measure {
            template = try TemplateParser.parse(yaml: Self.chainYAML(1_000), file: "chain.yaml")
        }
        #expect(template?.steps.count == 1_000)
        #expect(template?.topologicalOrder().last == "s999")
        #expect(elapsed < .seconds(10))
    }

    /// The graph algorithms themselves on 10,000 steps, one long cycle included.
    @Test func graphAlgorithmsHandleTenThousandSteps() {
        let count = 10_000
        let names = (0..<count).map { "s\($0)" }
        var dependsOn = (0..<count).map { $0 == 0 ? [String]() : ["s\($0 - 1)"] }
        #expect(DAGIndex(names: names, dependsOn: dependsOn).topologicalOrder().order.count == count)
        dependsOn[0] = ["s\(count - 1)"]
        let cycles = DAGIndex(names: names, dependsOn: dependsOn).cycles()
        #expect(cycles.count == 1)
        #expect(cycles.first?.count == count)
        #expect(cycles.first?.first == 0)
    }

    @Test func findsSeparateCycles() {
        let index = DAGIndex(
            names: ["a", "b", "c", "d", "e"],
            dependsOn: [["b"], ["a"], ["d"], ["c"], ["a", "c"]]
        )
        #expect(index.cycles() == [[0, 1], [2, 3]])
    }

    /// `template show` prints commands so that pasting them into a shell runs the same argv.
    @Test func commandsAreQuotedSoAShellReadsThemBack() throws {
        let words = ["plain", "two words", "it's", "'", "", "$HOME", "a;b|c&d", "*.py", "back\\slash", "line\nbreak", "tab\there",
                     "quote\"d", "ünïcødé", "print('x')", "--flag=value", "%s\n"]
        for word in words {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = ["-c", "printf '%s' " + WorkflowTemplate.shellQuoted(word)]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            process.waitUntilExit()
            let echoed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(echoed == word, "\(word.debugDescription) quoted as \(WorkflowTemplate.shellQuoted(word)) came back as \(echoed.debugDescription)")
        }
        #expect(WorkflowTemplate.shellQuoted("plain") == "plain")
        #expect(WorkflowTemplate.shellQuoted("it's") == #"'it'\''s'"#)
        #expect(WorkflowTemplate.shellQuoted("a\nb") == #"$'a\nb'"#)
    }
}
