import Testing
@testable import OrcastraTemplates

/// Every duration a template may give fits where it goes (issue 11: `max_delay: 1000h` was accepted
/// and then froze the worker that reported its retry).
@Suite(.timeLimit(.minutes(5))) struct DurationBoundsTests {
    static func template(_ step: String) -> String {
        "namespace: ns\nname: t\nversion: 1.0.0\nsteps:\n  - \(step)\n"
    }

    @Test(arguments: [
        ("{name: a, handler: h, timeout: 1000h}", "steps[0].timeout", "timeout '1000h' is longer than the longest Orcastra accepts, 720h (30 days)"),
        ("{name: a, handler: h, retry: {max_delay: 1000h}}", "steps[0].retry.max_delay", "max_delay '1000h' is longer"),
        ("{name: a, handler: h, retry: {initial_delay: 721h, max_delay: 721h}}", "steps[0].retry.initial_delay", "initial_delay '721h' is longer"),
    ])
    func durationsLongerThanThirtyDaysAreRefusedByName(step: String, path: String, message: String) throws {
        let error = try #require(throws: TemplateValidationError.self) {
            _ = try TemplateParser.parse(yaml: Self.template(step), file: "t.yaml")
        }
        #expect(error.issues.contains { $0.path == path && $0.message.contains(message) }, "\(error)")
    }

    @Test func thirtyDaysIsAccepted() throws {
        let template = try TemplateParser.parse(yaml: Self.template("{name: a, handler: h, timeout: 720h, retry: {initial_delay: 720h, max_delay: 720h}}"), file: "t.yaml")
        #expect(template.steps[0].timeout == .maximum)
        #expect(template.steps[0].retry.maxDelay == .maximum)
    }
}
