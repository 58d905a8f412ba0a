import Foundation
import Testing
@testable import OrcastraTemplates

/// `workflow:` steps (issue 19): what the parser keeps, and every error it reports, located.
@Suite(.timeLimit(.minutes(3))) struct SubWorkflowTemplateTests {
    static func issues(_ yaml: String) -> [TemplateIssue] {
        do {
            _ = try TemplateParser.parse(yaml: yaml, file: "w.yaml")
            return []
        } catch {
            return error.issues
        }
    }

    static func template(steps: String) -> String {
        "namespace: shop\nname: orders\nversion: 1.0.0\nsteps:\n" + steps
    }

    @Test func keepsTheReferenceAndStoresItAsText() throws {
        let template = try Fixtures.template(Self.template(steps: """
              - {name: report, handler: shop.report}
              - {name: refund, depends_on: [report], when: "$.parents.report.failed > 0", workflow: billing/refunds@1.2.0}
              - {name: latest, depends_on: [report], workflow: billing/refunds}
            """))
        #expect(template.steps[1].action == .workflow(WorkflowReference(namespace: "billing", name: "refunds",
                                                                         version: try SemanticVersion(parsing: "1.2.0"))))
        #expect(template.steps[2].action == .workflow(WorkflowReference(namespace: "billing", name: "refunds")))
        let stored = String(decoding: try JSONEncoder().encode(template.steps[1]), as: UTF8.self)
        #expect(stored.contains(#""workflow":"billing\/refunds@1.2.0""#) || stored.contains(#""workflow":"billing/refunds@1.2.0""#), "\(stored)")
        #expect(!stored.contains("handler") && !stored.contains("command"))
        let decoded = try JSONDecoder().decode(StepDefinition.self, from: try JSONEncoder().encode(template.steps[1]))
        #expect(decoded == template.steps[1])
        #expect(try WorkflowTemplate(normalizedJSON: try template.normalizedJSON()) == template)
    }

    @Test(arguments: [
        ("handler: shop.refund", "step 'refund' has both workflow and handler; keep exactly one of them"),
        ("command: [echo, hi]", "step 'refund' has both workflow and command; keep exactly one of them"),
    ])
    func workflowWithAnotherActionIsRefused(other: String, message: String) {
        let issues = Self.issues(Self.template(steps: """
              - name: refund
                workflow: billing/refunds@1.2.0
                \(other)
            """))
        #expect(issues.count == 1, "\(issues)")
        #expect(issues.first?.message == message)
        #expect(issues.first?.path == "steps[0]")
        // At the second of the two, in the order written.
        #expect(issues.first?.line == 7)
    }

    @Test func workflowWithForEachIsRefusedAtTheForEach() {
        let issues = Self.issues(Self.template(steps: """
              - {name: split, handler: shop.split}
              - name: refund
                depends_on: [split]
                workflow: billing/refunds@1.2.0
                for_each: "$.parents.split.orders"
            """))
        #expect(issues.count == 1, "\(issues)")
        #expect(issues.first?.path == "steps[1].for_each")
        #expect(issues.first?.line == 9)
        #expect(issues.first?.column == 5)
        #expect(issues.first?.message.hasPrefix("step 'refund' has both workflow and for_each; a sub-workflow step makes one child task") == true)
    }

    @Test(arguments: [
        ("billing", "workflow of step 'refund': 'billing' is not a template reference; write namespace/name or namespace/name@version, like billing/refunds@1.2.0"),
        ("Billing/refunds", "workflow of step 'refund': the namespace in 'Billing/refunds' is not valid: it starts with 'B'"),
        ("billing/refunds@1.2", "workflow of step 'refund': the version in 'billing/refunds@1.2' "),
    ])
    func malformedReferencesAreLocated(reference: String, message: String) {
        let issues = Self.issues(Self.template(steps: """
              - name: refund
                workflow: \(reference)
            """))
        #expect(issues.count == 1, "\(issues)")
        #expect(issues.first?.path == "steps[0].workflow")
        #expect(issues.first?.line == 6)
        #expect(issues.first?.column == 15)
        #expect(issues.first?.message.hasPrefix(message) == true, "\(issues)")
    }

    @Test func aTemplateThatCallsItselfIsRefused() {
        let issues = Self.issues(Self.template(steps: """
              - {name: a, handler: shop.a}
              - name: again
                depends_on: [a]
                workflow: shop/orders
            """))
        #expect(issues.count == 1, "\(issues)")
        #expect(issues.first?.path == "steps[1].workflow")
        #expect(issues.first?.line == 8)
        #expect(issues.first?.message.hasPrefix("step 'again' runs workflow shop/orders, this template itself") == true, "\(issues)")
    }

    @Test func noActionNamesWorkflowToo() {
        let issues = Self.issues(Self.template(steps: "  - {name: lonely}\n"))
        #expect(issues.first?.message == "step 'lonely' needs either handler (a Swift handler name) or command (a program to run) or workflow (a template to run as a child task); add one of them")
    }
}
