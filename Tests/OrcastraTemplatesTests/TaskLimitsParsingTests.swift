import Foundation
import Testing
@testable import OrcastraTemplates

/// A template's `timeout:` and `concurrency:` (issue 19): read, stored, and refused where wrong.
@Suite(.timeLimit(.minutes(3))) struct TaskLimitsParsingTests {
    static let header = "namespace: shop\nname: limits\nversion: 1.0.0\nsteps: [{name: a, handler: h.a}]\n"

    @Test func readAndStored() throws {
        let template = try TemplateParser.parse(yaml: Self.header + """
            timeout: 2h
            concurrency: {key: "$.context.customer_id", limit: 3}
            """, file: "inline.yaml")
        #expect(template.timeout == .hours(2))
        #expect(template.concurrency == TaskConcurrency(key: "$.context.customer_id", limit: 3))
        let json = try template.normalizedJSON()
        #expect(json.contains(#""timeout_ms":7200000"#))
        #expect(json.contains(#""concurrency":{"key":"$.context.customer_id","limit":3}"#))
        #expect(try WorkflowTemplate(normalizedJSON: json) == template)
        let plain = try TemplateParser.parse(yaml: Self.header, file: "inline.yaml")
        #expect(plain.timeout == nil && plain.concurrency == nil)
        let plainJSON = try plain.normalizedJSON()
        #expect(!plainJSON.contains(#""concurrency""#))
        #expect(plainJSON.components(separatedBy: "timeout_ms").count == 2, "only the step's timeout_ms")
    }

    @Test func stepConcurrency() throws {
        let yaml = "namespace: shop\nname: limits\nversion: 1.0.0\nsteps:\n  - {name: a, handler: h.a, concurrency: 3}\n  - {name: b, handler: h.b}\n"
        let template = try TemplateParser.parse(yaml: yaml, file: "inline.yaml")
        #expect(template.steps.map(\.concurrency) == [3, nil])
        let json = try template.normalizedJSON()
        #expect(json.contains(#""concurrency":3"#))
        #expect(try WorkflowTemplate(normalizedJSON: json) == template)
        for (value, message) in [("0", "concurrency must be at least 1 (attempts of this step running at once), got 0"),
                                 ("two", "concurrency must be a whole number"),
                                 ("{key: x, limit: 1}", "a step's concurrency is a number")] {
            let bad = "namespace: shop\nname: limits\nversion: 1.0.0\nsteps:\n  - name: a\n    handler: h.a\n    concurrency: \(value)\n"
            let issues: [TemplateIssue]
            do {
                _ = try TemplateParser.parse(yaml: bad, file: "inline.yaml")
                issues = []
            } catch {
                issues = error.issues
            }
            #expect(issues.contains { $0.path == "steps[0].concurrency" && $0.line == 7 && $0.column == 18 && $0.message.contains(message) }, "\(issues)")
        }
    }

    @Test(arguments: [
        "$.context.customer_id", "$.context.\"customer id\"", "$.context.orders[0].region", "$.context.a_b.C9",
    ])
    func keysInTheSubset(_ key: String) {
        #expect(JSONPathSyntax.problem(inKey: key) == nil)
    }

    /// Every refusal, located: line, column (inside the key for a jsonpath problem) and path.
    @Test(arguments: [
        ("timeout: 0s\n", 5, 10, "timeout", "timeout must be longer than 0s"),
        ("timeout: 721h\n", 5, 10, "timeout", "longer than the longest Orcastra accepts"),
        ("timeout: soon\n", 5, 10, "timeout", "timeout"),
        ("timout: 2h\n", 5, 1, "timout", "unknown key 'timout' in the template; did you mean 'timeout'?"),
        ("concurrency: 1\n", 5, 14, "concurrency", "concurrency must be a mapping"),
        ("concurrency: {key: \"$.context.c\"}\n", 5, 14, "concurrency", "concurrency is missing the required key 'limit'"),
        ("concurrency: {key: \"$.context.c\", limit: 0}\n", 5, 42, "concurrency.limit", "limit must be at least 1"),
        ("concurrency: {key: \"$.context.c\", limit: two}\n", 5, 42, "concurrency.limit", "limit must be a whole number"),
        ("concurrency: {key: \"$.context.c\", limit: 1, lmit: 2}\n", 5, 45, "concurrency.lmit", "did you mean 'limit'?"),
        ("concurrency: {key: \"context.c\", limit: 1}\n", 5, 21, "concurrency.key", "a jsonpath starts with '$'"),
        ("concurrency: {key: \"$.context.*\", limit: 1}\n", 5, 31, "concurrency.key", "'*' selects many values"),
        ("concurrency: {key: \"$.context.items[*]\", limit: 1}\n", 5, 36, "concurrency.key", "only a whole-number index like [0]"),
        ("concurrency: {key: \"$.context.c ? (@ > 1)\", limit: 1}\n", 5, 32, "concurrency.key", "unexpected space"),
        ("concurrency: {key: \"$.customer\", limit: 1}\n", 5, 22, "concurrency.key", "start it with $.context"),
        ("concurrency: {key: \"$.context\", limit: 1}\n", 5, 21, "concurrency.key", "$.context is the whole context"),
        ("concurrency: {key: \"$.context.c.size()\", limit: 1}\n", 5, 32, "concurrency.key", "methods like .size() are not allowed"),
        ("concurrency: {key: $.context.\"c, limit: 1}\n", 5, 30, "concurrency.key", "the quoted name is not closed"),
    ] as [(String, Int, Int, String, String)])
    func refusals(_ body: String, _ line: Int, _ column: Int, _ path: String, _ message: String) {
        let issues: [TemplateIssue]
        do {
            _ = try TemplateParser.parse(yaml: Self.header + body, file: "inline.yaml")
            issues = []
        } catch {
            issues = error.issues
        }
        #expect(issues.contains { $0.path == path && $0.line == line && $0.column == column && $0.message.contains(message) },
                "\(issues)")
    }
}
