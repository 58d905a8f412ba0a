import Testing
@testable import OrcastraTemplates

/// One expected issue: where it is and a piece of its message.
struct ExpectedIssue: CustomTestStringConvertible, Sendable {
    var fixture: String
    var line: Int
    var column: Int?
    var path: String
    var message: String

    var testDescription: String { "\(fixture): \(path)" }
}

@Suite("Every error class has a fixture, reported at the right place", .timeLimit(.minutes(3)))
struct BadFixtureTests {
    static let cases: [ExpectedIssue] = [
        .init(fixture: "unknown_key", line: 8, column: 5, path: "steps[1].depend_on",
              message: "unknown key 'depend_on' in step 'store'; did you mean 'depends_on'?"),
        .init(fixture: "duplicate_step", line: 9, column: 11, path: "steps[2].name",
              message: "step name 'fetch' is already used by steps[0] on line 5"),
        .init(fixture: "unknown_dependency", line: 8, column: 25, path: "steps[1].depends_on[1]",
              message: "step 'store' depends on unknown step 'fecth'; did you mean 'fetch'?"),
        .init(fixture: "self_dependency", line: 7, column: 9, path: "steps[0].depends_on[0]",
              message: "step 'fetch' depends on itself; remove 'fetch' from its depends_on"),
        .init(fixture: "cycle", line: 6, column: 18, path: "steps[0].depends_on[0]",
              message: "steps form a dependency cycle: a → b → c → a"),
        .init(fixture: "both_actions", line: 7, column: 5, path: "steps[0]",
              message: "step 'fetch' has both handler and command; keep exactly one of them"),
        .init(fixture: "no_action", line: 5, column: 5, path: "steps[0]",
              message: "step 'fetch' needs either handler (a Swift handler name) or command"),
        .init(fixture: "bad_duration", line: 5, column: 12, path: "defaults.timeout",
              message: "'5 minutes' is not a duration"),
        .init(fixture: "bad_duration", line: 9, column: 14, path: "steps[0].timeout",
              message: "timeout '30' has no unit; add one, e.g. 30s"),
        .init(fixture: "bad_version", line: 3, column: 10, path: "version",
              message: "version '1.0' is not a semantic version; write it as MAJOR.MINOR.PATCH"),
        .init(fixture: "empty_steps", line: 4, column: 8, path: "steps",
              message: "steps is empty; add at least one step"),
        .init(fixture: "invalid_name", line: 2, column: 7, path: "name",
              message: "template name 'Order Fulfillment' is invalid because it starts with 'O'"),
        .init(fixture: "invalid_name", line: 2, column: 7, path: "name",
              message: "try 'order_fulfillment'"),
        .init(fixture: "invalid_name", line: 6, column: 14, path: "steps[0].handler",
              message: "handler name 'Shop/Fetch' is invalid"),
        .init(fixture: "wrong_type", line: 8, column: 17, path: "steps[1].depends_on",
              message: "depends_on must be a list, got the text 'fetch'; write it like depends_on: [extract, validate]"),
        .init(fixture: "missing_keys", line: 1, column: 1, path: "",
              message: "the template is missing the required key 'version'"),
        .init(fixture: "missing_keys", line: 4, column: 5, path: "steps[0]",
              message: "step 1 is missing the required key 'name'"),
        .init(fixture: "syntax_error", line: 7, column: 4, path: "",
              message: "YAML syntax error"),
        .init(fixture: "duplicate_key", line: 8, column: 5, path: "",
              message: "the key 'handler' appears twice in the same mapping (first on line 6)"),
        .init(fixture: "bad_retry", line: 8, column: 21, path: "steps[0].retry.max_attempts",
              message: "max_attempts must be at least 1 (1 means no retries), got 0"),
        .init(fixture: "bad_retry", line: 9, column: 16, path: "steps[0].retry.backoff",
              message: "unknown backoff 'exponentail'; did you mean 'exponential'?"),
        .init(fixture: "bad_schema", line: 9, column: 13, path: "input_schema.properties.order_id.type",
              message: "unknown type 'int'; did you mean 'integer'?"),
        .init(fixture: "not_a_command", line: 6, column: 14, path: "steps[0].command",
              message: "command must be a list of arguments, not a single string"),
    ]

    @Test(arguments: cases)
    func reportsIssue(_ expected: ExpectedIssue) throws {
        let issues = try Fixtures.issues("bad/\(expected.fixture).yaml")
        let match = issues.first { $0.path == expected.path && $0.message.contains(expected.message) }
        #expect(match != nil, "no issue at \(expected.path) containing \"\(expected.message)\"; got:\n\(issues.map(\.description).joined(separator: "\n"))")
        #expect(match?.line == expected.line)
        if let column = expected.column {
            #expect(match?.column == column)
        }
        #expect(match?.file == "bad/\(expected.fixture).yaml")
    }

    /// Every file under bad/ must fail; a fixture that silently starts
    /// passing means a check was lost.
    @Test(arguments: [
        "unknown_key", "duplicate_step", "unknown_dependency", "self_dependency", "cycle",
        "both_actions", "no_action", "bad_duration", "bad_version", "empty_steps", "invalid_name",
        "wrong_type", "missing_keys", "syntax_error", "duplicate_key", "bad_retry", "bad_schema",
        "not_a_command", "many_errors",
    ])
    func everyBadFixtureFails(_ fixture: String) throws {
        #expect(try !Fixtures.issues("bad/\(fixture).yaml").isEmpty)
    }

    @Test func reportsEveryErrorInAFileAtOnce() throws {
        let issues = try Fixtures.issues("bad/many_errors.yaml")
        let summary = issues.map { "\($0.line) \($0.path)" }
        #expect(summary == [
            "1 namespace",
            "3 version",
            "7 steps[0].timout",
            "9 steps[1].depends_on[1]",
            "12 steps[1].retry.max_attempts",
            "13 steps[2].name",
        ])
        #expect(issues.first { $0.path == "steps[0].timout" }?.message.contains("did you mean 'timeout'?") == true)
    }

    @Test func cycleIsReportedOnceAndDownstreamStepsAreNotBlamed() throws {
        let issues = try Fixtures.issues("bad/cycle.yaml")
        #expect(issues.count == 1)
        #expect(issues[0].message.contains("a → b → c → a ("))
        #expect(!issues[0].message.contains("→ after"))
    }

    @Test func validationErrorListsAllIssuesUnderAHeader() throws {
        let text = try Fixtures.text("bad/bad_duration.yaml")
        do {
            _ = try TemplateParser.parse(yaml: text, file: "Templates/x.yaml")
            Issue.record("expected an error")
        } catch {
            let lines = error.description.split(separator: "\n")
            #expect(lines.first == "Templates/x.yaml has 2 errors:")
            #expect(lines.count == 3)
            #expect(lines[1].hasPrefix("  Templates/x.yaml:5:12: defaults.timeout: timeout '5 minutes'"))
        }
    }
}
