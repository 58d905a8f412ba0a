import Foundation
import Testing
@testable import OrcastraTemplates

/// `when:` and `trigger:` (issue 19): what the parser keeps and every error it reports, located.
@Suite(.timeLimit(.minutes(3))) struct ConditionTests {
    static func issues(_ yaml: String) -> [TemplateIssue] {
        do {
            _ = try TemplateParser.parse(yaml: yaml, file: "c.yaml")
            return []
        } catch {
            return error.issues
        }
    }

    static func template(steps: String) -> String {
        "namespace: shop\nname: cond\nversion: 1.0.0\nsteps:\n" + steps
    }

    @Test func keepsWhenAndTriggerAndLeavesPlainStepsUnchanged() throws {
        let template = try Fixtures.template(Self.template(steps: """
              - {name: split, handler: shop.split}
              - name: refund
                depends_on: [split]
                when: "$.parents.split.failed > 0 && $.context.customer.tier == \\"gold\\""
                handler: shop.refund
              - {name: notify, depends_on: [refund], trigger: none_failed, handler: shop.mail}
            """))
        #expect(template.steps[0].when == nil && template.steps[0].trigger == .allSuccess)
        #expect(template.steps[1].when == #"$.parents.split.failed > 0 && $.context.customer.tier == "gold""#)
        #expect(template.steps[2].trigger == .noneFailed)
        // The stored definition names them only when set, so older templates keep their content hash.
        let plain = String(decoding: try JSONEncoder().encode(template.steps[0]), as: UTF8.self)
        #expect(!plain.contains("when") && !plain.contains("trigger"))
        let decoded = try JSONDecoder().decode(StepDefinition.self, from: try JSONEncoder().encode(template.steps[2]))
        #expect(decoded == template.steps[2])
    }

    @Test func unknownTriggerSuggestsTheNearestRule() {
        let issues = Self.issues(Self.template(steps: """
              - {name: a, handler: shop.a}
              - {name: b, depends_on: [a], trigger: all_sucess, handler: shop.b}
            """))
        #expect(issues.count == 1)
        #expect(issues.first?.path == "steps[1].trigger")
        #expect(issues.first?.line == 6)
        #expect(issues.first?.message.contains("unknown trigger 'all_sucess'; did you mean 'all_success'?") == true, "\(issues)")
        #expect(issues.first?.message.contains("all_done, one_success, none_failed") == true)
    }

    @Test func badJSONPathIsLocatedAtTheCharacter() {
        // Line 7; the value starts at column 11 (its quote), so '=' at offset 18 is column 11 + 1 + 18.
        let issues = Self.issues(Self.template(steps: """
              - {name: a, handler: shop.a}
              - name: b
                when: "$.parents.a.count = 3"
                depends_on: [a]
                handler: shop.b
            """))
        #expect(issues.count == 1, "\(issues)")
        let issue = issues.first
        #expect(issue?.path == "steps[1].when")
        #expect(issue?.line == 7)
        #expect(issue?.column == 11 + 1 + 18)
        #expect(issue?.message.contains("'=' is not an operator in jsonpath; compare with '=='") == true, "\(issues)")
    }

    @Test(arguments: [
        ("$.context.x ==", "expected a path, a literal or '(', found the end of the expression"),
        ("$.context.(x)", "expected a key after '.'"),
        ("$.context.x == 'a'", "double quotes"),
        ("$.context.x ? (@ > 1", "expected ')' to close the filter"),
        ("$.context.x == \"open", "a string is not closed"),
        ("", "is empty"),
        ("context.x == 1", "unexpected word 'context'"),
        ("$.context.x 1", "found a number after a complete expression"),
    ])
    func syntaxErrors(_ expression: String, _ expected: String) {
        let escaped = expression.replacingOccurrences(of: "\"", with: "\\\"")
        let issues = Self.issues(Self.template(steps: "  - {name: a, handler: shop.a, when: \"\(escaped)\"}\n"))
        #expect(issues.count == 1, "\(issues)")
        #expect(issues.first?.path == "steps[0].when")
        #expect(issues.first?.message.contains(expected) == true, "\(issues)")
    }

    @Test(arguments: [
        "$.context.flag",
        "$.context.n > 3 && !($.context.skip == true)",
        "strict $.parents.a.items.size() > 0",
        "exists($.parents.a.rows[*] ? (@.amount >= 100.5))",
        "$.parents.a.name like_regex \"^ab\" flag \"i\"",
        "$.parents.a.name starts with \"x\"",
        "($.context.a > 1) is unknown",
        "$.parents.a.\"odd key\"[0 to 2, last] == -1e3",
        "$.context.** ? (@ == 1) != null",
        "$.parents.a.total * 2 % 3 <> $.context.n / 4 - 1",
    ])
    func validExpressionsPass(_ expression: String) {
        let escaped = expression.replacingOccurrences(of: "\"", with: "\\\"")
        let issues = Self.issues(Self.template(steps: """
              - {name: a, handler: shop.a}
              - {name: b, depends_on: [a], handler: shop.b, when: "\(escaped)"}
            """))
        #expect(issues.isEmpty, "\(expression): \(issues)")
    }

    @Test func expressionsReadOnlyDeclaredParents() {
        let issues = Self.issues(Self.template(steps: """
              - {name: split, handler: shop.split}
              - {name: audit, handler: shop.audit}
              - name: refund
                depends_on: [split]
                when: "$.parents.splitt.failed > 0 || $.parents.audit.ok"
                handler: shop.refund
              - {name: root, handler: shop.root, when: "$.parents.split.ok"}
              - {name: other, depends_on: [split], handler: shop.x, when: "$.contxt.a == 1"}
            """))
        #expect(issues.count == 4, "\(issues)")
        let messages = issues.map(\.message)
        #expect(messages.contains { $0.contains("reads $.parents.splitt, but 'splitt' is not in its depends_on; did you mean 'split'?") }, "\(messages)")
        #expect(messages.contains { $0.contains("reads $.parents.audit, but 'audit' is not in its depends_on; it can read only its parents: split") }, "\(messages)")
        #expect(messages.contains { $0.contains("step 'root' has no depends_on") }, "\(messages)")
        #expect(messages.contains { $0.contains("reads $.contxt, but a step's input has only context and parents; did you mean 'context'?") }, "\(messages)")
        // Each is located at the reference: `splitt` on line 9.
        let splitt = issues.first { $0.message.contains("splitt") }
        #expect(splitt?.line == 9 && splitt?.path == "steps[2].when")
        #expect(splitt?.column == 11 + 1 + 2)
    }
}

/// `for_each:` and `max_parallel:`: kept, and every error located.
@Suite(.timeLimit(.minutes(3))) struct FanOutTemplateTests {
    @Test func keepsForEachAndMaxParallel() throws {
        let template = try Fixtures.template(ConditionTests.template(steps: """
              - {name: split, handler: shop.split}
              - {name: charge, depends_on: [split], for_each: "$.parents.split.orders", max_parallel: 20, handler: shop.charge}
            """))
        #expect(template.steps[1].forEach == "$.parents.split.orders" && template.steps[1].maxParallel == 20)
        let json = String(decoding: try JSONEncoder().encode(template.steps[1]), as: UTF8.self)
        #expect(json.contains(#""for_each":"$.parents.split.orders""#) && json.contains(#""max_parallel":20"#), "\(json)")
        #expect(try JSONDecoder().decode(StepDefinition.self, from: Data(json.utf8)) == template.steps[1])
    }

    @Test func everyFanOutErrorIsLocated() {
        let issues = ConditionTests.issues(ConditionTests.template(steps: """
              - {name: split, handler: shop.split}
              - {name: a, depends_on: [split], for_each: "$.parents.splt.orders", handler: shop.a}
              - {name: b, depends_on: [split], for_each: "$.parents.split.orders[", handler: shop.b}
              - {name: c, depends_on: [split], max_parallel: 5, handler: shop.c}
              - {name: d, depends_on: [split], for_each: "$.parents.split.orders", max_parallel: 0, handler: shop.d}
            """))
        #expect(issues.count == 4, "\(issues)")
        #expect(issues.contains { $0.path == "steps[1].for_each" && $0.line == 6 && $0.message.contains("for_each of step 'a' reads $.parents.splt, but 'splt' is not in its depends_on; did you mean 'split'?") }, "\(issues)")
        #expect(issues.contains { $0.path == "steps[2].for_each" && $0.line == 7 && $0.message.contains("for_each of step 'b' is not a valid jsonpath") }, "\(issues)")
        #expect(issues.contains { $0.path == "steps[3].max_parallel" && $0.message.contains("step 'c' has max_parallel but no for_each") }, "\(issues)")
        #expect(issues.contains { $0.path == "steps[4].max_parallel" && $0.message.contains("max_parallel must be at least 1") }, "\(issues)")
    }
    /// `instance_input:` kept in the stored definition (claim_steps reads it there), in its
    /// canonical order; absent when empty, so older definitions and their hashes stay as they were.
    @Test func keepsInstanceInput() throws {
        let template = try Fixtures.template(ConditionTests.template(steps: """
              - {name: split, handler: shop.split}
              - {name: charge, depends_on: [split], for_each: "$.parents.split.orders", instance_input: [parents, context], handler: shop.charge}
              - {name: plain, depends_on: [split], for_each: "$.parents.split.orders", handler: shop.charge}
            """))
        #expect(template.steps[1].instanceInput == [.context, .parents])
        let json = String(decoding: try JSONEncoder().encode(template.steps[1]), as: UTF8.self)
        #expect(json.contains(#""instance_input":["context","parents"]"#), "\(json)")
        #expect(try JSONDecoder().decode(StepDefinition.self, from: Data(json.utf8)) == template.steps[1])
        let plain = String(decoding: try JSONEncoder().encode(template.steps[2]), as: UTF8.self)
        #expect(!plain.contains("instance_input"), "\(plain)")
    }

    @Test func everyInstanceInputErrorIsLocated() {
        let issues = ConditionTests.issues(ConditionTests.template(steps: """
              - {name: split, handler: shop.split}
              - {name: a, depends_on: [split], instance_input: [context], handler: shop.a}
              - {name: b, depends_on: [split], for_each: "$.parents.split.orders", instance_input: [contxt], handler: shop.b}
              - {name: c, depends_on: [split], for_each: "$.parents.split.orders", instance_input: [parents, parents], handler: shop.c}
              - {name: d, depends_on: [split], for_each: "$.parents.split.orders", instance_input: context, handler: shop.d}
            """))
        #expect(issues.count == 4, "\(issues)")
        #expect(issues.contains { $0.path == "steps[1].instance_input" && $0.line == 6 && $0.message.contains("step 'a' has instance_input but no for_each") }, "\(issues)")
        #expect(issues.contains { $0.path == "steps[2].instance_input[0]" && $0.line == 7 && $0.message.contains("unknown instance_input entry 'contxt'; did you mean 'context'?") }, "\(issues)")
        #expect(issues.contains { $0.path == "steps[3].instance_input[1]" && $0.message.contains("instance_input lists 'parents' twice") }, "\(issues)")
        #expect(issues.contains { $0.path == "steps[4].instance_input" && $0.message.contains("instance_input must be a list") }, "\(issues)")
    }
}
