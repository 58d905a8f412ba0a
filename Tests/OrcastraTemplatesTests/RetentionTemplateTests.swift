import Foundation
import Testing
@testable import OrcastraTemplates

/// A template's `retention:` (issue 20): periods in days or forever per final state, located
/// errors, and a normalized form that leaves templates without retention as they were.
@Suite(.timeLimit(.minutes(5))) struct RetentionTemplateTests {
    static func template(_ retention: String?) -> String {
        var text = "namespace: ns\nname: t\nversion: 1.0.0\n"
        if let retention { text += "retention: \(retention)\n" }
        return text + "steps:\n  - {name: a, handler: h}\n"
    }

    @Test func periodsPerFinalStateAreRead() throws {
        let template = try TemplateParser.parse(
            yaml: Self.template("{complete: 7d, error: 1d12h, cancelled: 36h, resolved_manually: forever}"), file: "t.yaml")
        let retention = try #require(template.retention)
        #expect(retention.complete == .after(.hours(7 * 24)))
        #expect(retention.error == .after(.hours(36)))
        #expect(retention.cancelled == .after(.hours(36)))
        #expect(retention.resolvedManually == .forever)
        #expect(retention.complete?.description == "7d")
        #expect(retention.error?.description == "36h")
    }

    @Test func normalizedJSONStoresMillisecondsAndNullForForever() throws {
        let template = try TemplateParser.parse(yaml: Self.template("{complete: 7d, error: forever}"), file: "t.yaml")
        let json = try template.normalizedJSON()
        #expect(json.contains(#""retention":{"complete_ms":604800000,"error_ms":null}"#), "\(json)")
        let back = try WorkflowTemplate(normalizedJSON: json)
        #expect(back == template)
    }

    @Test func withoutRetentionTheNormalizedFormIsUnchanged() throws {
        let template = try TemplateParser.parse(yaml: Self.template(nil), file: "t.yaml")
        #expect(template.retention == nil)
        #expect(!(try template.normalizedJSON()).contains("retention"))
        // An empty mapping says nothing either: same definition, same content hash.
        let empty = try TemplateParser.parse(yaml: Self.template("{}"), file: "t.yaml")
        #expect(try empty.normalizedJSON() == (try template.normalizedJSON()))
    }

    @Test(arguments: [
        ("{complete: 7}", "retention.complete", "complete '7' has no unit; add one, e.g. 7d for days, or write forever"),
        ("{complete: 7x}", "retention.complete", "is not a duration; write numbers each followed by d, h, m, s, ms"),
        ("{error: 30s}", "retention.error", "shorter than the shortest retention, 1m"),
        ("{cancelled: 40000d}", "retention.cancelled", "longer than the longest retention, 36500d; write forever"),
        ("{completed: 7d}", "retention.completed", "unknown key 'completed' in retention; did you mean 'complete'?"),
        ("{in_progress: 7d}", "retention.in_progress", "unknown key 'in_progress' in retention"),
        ("7d", "retention", "retention must be a mapping"),
        ("{complete: [7d]}", "retention.complete", "complete must be"),
    ])
    func badRetentionIsReportedWhereItIs(retention: String, path: String, message: String) throws {
        let error = try #require(throws: TemplateValidationError.self) {
            _ = try TemplateParser.parse(yaml: Self.template(retention), file: "t.yaml")
        }
        let issue = try #require(error.issues.first { $0.path == path }, "\(error)")
        #expect(issue.message.contains(message), "\(issue.message)")
        #expect(issue.line == 4, "\(issue)")
    }

    @Test func daysAreOnlyForRetention() throws {
        #expect(throws: TemplateDurationError.self) { try TemplateDuration(parsing: "1d") }
        #expect(try TemplateDuration(parsingDays: "1d2h").milliseconds == 26 * 3_600_000)
    }
}
