import Foundation
import Testing
@testable import OrcastraTemplates

/// `TemplateDiff` compares normalized definitions: what runs, not how the YAML was written.
@Suite(.timeLimit(.minutes(3))) struct TemplateDiffTests {
    static let base = """
        namespace: shop
        name: order
        version: 1.0.0
        steps:
          - {name: a, handler: h.a}
          - {name: b, handler: h.b, depends_on: [a]}
        """

    func template(_ yaml: String) throws -> WorkflowTemplate { try Fixtures.template(yaml) }

    @Test func formattingAndWrittenOutDefaultsAreNoDifference() throws {
        let written = """
            # the same, said differently
            namespace: shop
            name: order
            version: 1.0.1
            defaults: {timeout: 5m, retry: {max_attempts: 3}}
            steps:
              - name: a
                handler: h.a
                namespace: shop
              - {name: b, handler: h.b, depends_on: [a], retry: {backoff: exponential, initial_delay: 1s}}
            """
        let diff = try TemplateDiff(from: template(Self.base), to: template(written))
        #expect(diff.isIdentical, "\(diff)")
        #expect(diff.rendered { _ in nil } == "shop/order@1.0.0 and shop/order@1.0.1 have the same definition.")
    }

    /// A changed default reaches every step that does not set its own, and shows in each.
    @Test func aChangedDefaultShowsInEveryStepItReaches() throws {
        let changed = Self.base.replacingOccurrences(of: "version: 1.0.0", with: "version: 1.1.0\ndefaults: {timeout: 1m}")
        let diff = try TemplateDiff(from: template(Self.base), to: template(changed))
        #expect(diff.stepsChanged.map(\.step) == ["a", "b"])
        #expect(diff.stepsChanged.allSatisfy { $0.changes == [.init(field: "timeout_ms", from: 300_000, to: 60_000)] })
        #expect(diff.changes.isEmpty && diff.stepsAdded.isEmpty && diff.stepsRemoved.isEmpty)
        #expect(TemplateDiff.render(diff.stepsChanged[0].changes[0]) == "timeout: 5m → 1m")
    }

    @Test func aHandlerReplacedByACommandShowsBothSides() throws {
        let changed = Self.base.replacingOccurrences(of: "{name: b, handler: h.b, depends_on: [a]}",
                                                     with: "{name: b, command: [run, b], depends_on: [a]}")
        let diff = try TemplateDiff(from: template(Self.base), to: template(changed))
        let fields = try #require(diff.stepsChanged.first).changes
        #expect(fields.map(\.field) == ["command", "handler"])
        #expect(fields[0].from == nil && fields[0].to == .object(["argv": ["run", "b"], "env": [:]]))
        #expect(fields[1].from == "h.b" && fields[1].to == nil)
        #expect(fields.map(TemplateDiff.render) == [#"command: (none) → {"argv":["run","b"],"env":{}}"#, "handler: h.b → (none)"])
    }

    @Test func reorderedStepsAndAnotherTemplateAreTopLevelChanges() throws {
        let reordered = """
            namespace: billing
            name: invoice
            version: 1.0.0
            description: Now with a description.
            steps:
              - {name: c, handler: h.c}
              - {name: b, handler: h.b, depends_on: [a]}
              - {name: a, handler: h.a}
            """
        let diff = try TemplateDiff(from: template(Self.base), to: template(reordered))
        #expect(diff.from == "shop/order@1.0.0" && diff.to == "billing/invoice@1.0.0")
        #expect(diff.changes.map(\.field) == ["description", "name", "namespace", "step_order"])
        #expect(diff.changes.last?.from == ["a", "b"] && diff.changes.last?.to == ["b", "a"])
        #expect(diff.stepsAdded == ["c"])
        // Every step's pool moved with the template's namespace.
        #expect(diff.stepsChanged.map(\.step) == ["b", "a"])
        #expect(diff.stepsChanged.allSatisfy { $0.changes.map(\.field) == ["namespace"] })
        let text = diff.rendered { _ in nil }
        #expect(text.contains("~ step_order: [a, b] → [b, a]"), "\(text)")
        #expect(text.hasSuffix("1 step added, 0 removed, 2 changed; 4 changes outside the steps."), "\(text)")
    }

    @Test func theJSONHasEveryKeyAndNullForAnAbsentSide() throws {
        let changed = Self.base.replacingOccurrences(of: "{name: b, handler: h.b, depends_on: [a]}",
                                                     with: "{name: b, command: {argv: [x], env: {K: v}}, depends_on: [a]}")
        let diff = try TemplateDiff(from: template(Self.base), to: template(changed))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let object = try #require(try JSONSerialization.jsonObject(with: try encoder.encode(diff)) as? [String: Any])
        #expect(Set(object.keys) == ["from", "to", "identical", "changes", "steps_added", "steps_removed", "steps_changed"])
        let step = try #require((object["steps_changed"] as? [[String: Any]])?.first)
        let handler = try #require((step["changes"] as? [[String: Any]])?.last)
        #expect(handler["field"] as? String == "handler" && handler["from"] as? String == "h.b" && handler["to"] is NSNull)
    }
}
