import Foundation
import OrcastraTemplates
import Testing

/// Hand-picked nasty inputs, each kept because it once was, or could be, a crash or a hang.
@Suite(.timeLimit(.minutes(5))) struct TemplateExtremesTests {
    static let header = "namespace: bad\nname: extreme\nversion: 1.0.0\n"

    static let cases: [(name: String, yaml: String)] = [
        ("nesting [ ×10,000 closed", header + "description: " + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "\nsteps: [{name: a, handler: b}]\n"),
        ("nesting [ ×100,000 unclosed", header + "description: " + String(repeating: "[", count: 100_000) + "\n"),
        ("nesting { ×10,000 unclosed", header + "steps: " + String(repeating: "{a: ", count: 10_000) + "\n"),
        ("block nesting ×2,000", header + (0..<2_000).map { String(repeating: " ", count: $0) + "k\($0):" }.joined(separator: "\n") + " 1\n"),
        ("input_schema nesting ×5,000", header + "input_schema: " + String(repeating: "{type: array, items: ", count: 5_000) + "{type: string}" + String(repeating: "}", count: 5_000) + "\nsteps: [{name: a, handler: b}]\n"),
        ("enum nesting ×5,000", header + "input_schema: {enum: [" + String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000) + "]}\nsteps: [{name: a, handler: b}]\n"),
        ("alias expansion (billion laughs)", header + """
            a: &a [x, x, x, x, x, x, x, x, x, x]
            b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
            c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
            d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
            e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
            f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
            g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
            steps: [{name: a, handler: b, description: *g}]
            """),
        ("undefined alias", header + "steps: *nowhere\n"),
        ("recursive merge key", header + "x: &x {<<: *x}\nsteps: [{name: a, handler: b}]\n"),
        ("one 1 MiB line", header + "description: " + String(repeating: "🎻", count: 1 << 18) + "\nsteps: [{name: a, handler: b}]\n"),
        ("1 MiB step name", header + "steps: [{name: " + String(repeating: "a", count: 1 << 20) + ", handler: b}]\n"),
        ("NUL bytes", header + "description: a\u{0}b\nsteps: [{name: a, handler: b}]\n"),
        ("only NUL", "\u{0}"),
        ("only a BOM", "\u{FEFF}"),
        ("only a comment", "# nothing here\n"),
        ("only ---", "---\n"),
        ("two documents", header + "steps: [{name: a, handler: b}]\n---\n" + header),
        ("a scalar document", "42"),
        ("a list document", "- a\n- b\n"),
        ("tab indentation", "namespace: bad\nsteps:\n\t- name: a\n"),
        ("CR line ends", header.replacingOccurrences(of: "\n", with: "\r") + "steps: [{name: a, handler: b}]"),
        ("huge max_attempts", header + "steps: [{name: a, handler: b, retry: {max_attempts: 99999999999999999999999}}]\n"),
        ("huge timeout", header + "steps: [{name: a, handler: b, timeout: 99999999999999999999h}]\n"),
        ("max Int timeout", header + "steps: [{name: a, handler: b, timeout: 9223372036854775807ms}]\n"),
        ("longest timeout", header + "steps: [{name: a, handler: b, timeout: 720h}]\n"),
        ("overflowing hours", header + "steps: [{name: a, handler: b, timeout: 2562047788015216h}]\n"),
        ("huge version", header.replacingOccurrences(of: "1.0.0", with: "99999999999999999999999.0.0") + "steps: [{name: a, handler: b}]\n"),
        ("negative delay", header + "steps: [{name: a, handler: b, retry: {initial_delay: -1s}}]\n"),
        ("binary tag", header + "description: !!binary aGVsbG8=\nsteps: [{name: a, handler: b}]\n"),
        ("unknown tag", header + "steps: !custom [{name: a, handler: b}]\n"),
        ("complex key", header + "? [a, b]\n: c\nsteps: [{name: a, handler: b}]\n"),
        ("10,000 duplicate keys", header + (0..<10_000).map { _ in "steps: []" }.joined(separator: "\n")),
        ("10,000 unknown keys", header + (0..<10_000).map { "key\($0): 1" }.joined(separator: "\n") + "\nsteps: [{name: a, handler: b}]\n"),
        ("invalid UTF-8 as replacement characters", String(decoding: Array(header.utf8) + [0xFF, 0xFE, 0xC0, 0x80], as: UTF8.self)),
        ("unicode names", "namespace: café\nname: 中文\nversion: 1.0.0\nsteps: [{name: 🎻, handler: ünï}]\n"),
    ]

    @Test(arguments: 0..<cases.count)
    func extremeInputIsRefusedOrParsed(_ index: Int) async {
        let (name, yaml) = Self.cases[index]
        let start = ContinuousClock.now
        let outcome = await onThread(timeout: .seconds(20)) { () -> Result<WorkflowTemplate, TemplateValidationError> in
            do throws(TemplateValidationError) { return .success(try TemplateParser.parse(yaml: yaml, file: "extreme.yaml")) } catch { return .failure(error) }
        }
        guard let outcome else {
            Issue.record("\(name): the parser did not answer within 20 s")
            return
        }
        switch outcome {
        case .success(let template):
            print("extreme '\(name)': parsed (\(template.steps.count) steps) in \(seconds(since: start))")
            // Accepting is right only for the inputs known to be valid, and then what was read must be
            // exactly what was written.
            guard let check = Self.accepted[name] else {
                Issue.record("\(name): accepted, but it should be refused: \(template)")
                return
            }
            #expect(template.namespace == "bad" && template.name == "extreme" && template.version.description == "1.0.0", "\(name): \(template.reference)")
            #expect(template.steps.map(\.name) == ["a"], "\(name)")
            #expect(template.steps.map(\.action) == [.handler("b")], "\(name)")
            #expect(template.steps.allSatisfy { $0.dependsOn.isEmpty }, "\(name)")
            check(template)
        case .failure(let error):
            #expect(Self.accepted[name] == nil, "\(name): refused, but it is a valid template: \(error)")
            let first = error.issues.first.map { "\($0.line):\($0.column) \($0.message.prefix(160))" } ?? "no issues"
            print("extreme '\(name)': \(error.issues.count) issue(s) in \(seconds(since: start)); first: \(first)")
            #expect(!error.issues.isEmpty, "\(name)")
            for issue in error.issues {
                #expect(!issue.message.isEmpty, "\(name)")
                // Whole-file problems (an empty document) are documented to have no position.
                if !Self.wholeFile(issue) {
                    #expect(issue.line >= 1 && issue.column >= 1, "\(name): \(issue)")
                }
            }
        }
    }

    /// The valid inputs among the cases, each with what must have been read from it (beyond the
    /// header and the single step `a` with handler `b` that all of them have).
    static let accepted: [String: @Sendable (WorkflowTemplate) -> Void] = [
        "CR line ends": { template in
            #expect(template.description == nil)
        },
        "longest timeout": { template in
            #expect(template.steps[0].timeout == TemplateDuration.maximum)
        },
        "binary tag": { template in
            #expect(template.description == "aGVsbG8=", "\(String(describing: template.description))")
        },
        "unknown tag": { template in
            #expect(template.description == nil)
        },
        "one 1 MiB line": { template in
            // Every one of the 262,144 four-byte scalars survives.
            #expect(template.description == String(repeating: "🎻", count: 1 << 18))
            #expect(template.description?.utf8.count == 1 << 20)
        },
    ]

    /// Issues that TemplateIssue documents as concerning the whole file (line 0).
    static func wholeFile(_ issue: TemplateIssue) -> Bool {
        issue.path.isEmpty && issue.message.hasPrefix("the file is empty")
    }
}
