import Foundation
import Testing
@testable import OrcastraTemplates

@Suite(.timeLimit(.minutes(3))) struct TemplateParserTests {
    @Test(arguments: ["linear", "diamond", "etl"])
    func examplesParse(_ name: String) throws {
        let template = try TemplateParser.parse(yaml: try Fixtures.text("good/\(name).yaml"), file: "\(name).yaml")
        #expect(template.namespace == "examples")
        #expect(template.name == name)
        #expect(template.reference == "examples/\(name)@1.0.0")
    }

    @Test func appliesDefaultsInOrderBuiltInThenDefaultsThenStep() throws {
        let template = try Fixtures.template("""
            namespace: shop
            name: layered
            version: 1.2.3-beta.1
            defaults:
              timeout: 45s
              retry: {max_attempts: 5, initial_delay: 2s}
            steps:
              - name: plain
                handler: shop.plain
              - name: custom
                namespace: gpu
                handler: shop.custom
                timeout: 2m
                retry: {backoff: fixed, jitter: false}
            """)
        let plain = try #require(template.step(named: "plain"))
        #expect(plain.timeout == .seconds(45))
        #expect(plain.namespace == "shop")
        #expect(plain.retry == RetryPolicy(maxAttempts: 5, backoff: .exponential, initialDelay: .seconds(2), maxDelay: .minutes(5), jitter: true))
        let custom = try #require(template.step(named: "custom"))
        #expect(custom.timeout == .minutes(2))
        #expect(custom.namespace == "gpu")
        #expect(custom.retry == RetryPolicy(maxAttempts: 5, backoff: .fixed, initialDelay: .seconds(2), maxDelay: .minutes(5), jitter: false))
        #expect(template.version.prerelease == ["beta", "1"])
    }

    @Test func builtInDefaultsWithoutADefaultsSection() throws {
        let template = try Fixtures.template("""
            namespace: shop
            name: bare
            version: 1.0.0
            steps: [{name: only, handler: shop.only}]
            """)
        #expect(template.steps[0].retry == .standard)
        #expect(template.steps[0].timeout == .minutes(5))
    }

    @Test func readsBothCommandForms() throws {
        let template = try Fixtures.template("""
            namespace: shop
            name: commands
            version: 1.0.0
            steps:
              - name: short
                command: [echo, 8080]
              - name: long
                command:
                  argv: [python3, run.py]
                  env: {MODE: fast, LEVEL: 3}
                  working_directory: /tmp
            """)
        #expect(template.steps[0].action == .command(CommandSpec(argv: ["echo", "8080"])))
        #expect(template.steps[1].action == .command(CommandSpec(argv: ["python3", "run.py"], env: ["MODE": "fast", "LEVEL": "3"], workingDirectory: "/tmp")))
    }

    @Test func initialDelayLongerThanMaxDelayIsRefused() throws {
        #expect {
            try Fixtures.template("""
                namespace: shop
                name: delays
                version: 1.0.0
                steps:
                  - name: s
                    handler: shop.s
                    retry: {initial_delay: 10m}
                """)
        } throws: { error in
            let issue = (error as? TemplateValidationError)?.issues.first
            return issue?.path == "steps[0].retry" && issue?.message.contains("initial_delay (10m) is longer than max_delay (5m)") == true
        }
    }

    @Test func emptyAndNonMappingDocumentsAreExplained() {
        for (yaml, fragment) in [("", "the file is empty"), ("- a\n- b", "must be a mapping")] {
            #expect {
                try TemplateParser.parse(yaml: yaml, file: "x.yaml")
            } throws: { error in
                (error as? TemplateValidationError)?.issues.first?.message.contains(fragment) == true
            }
        }
    }

    @Test func inputSchemaIsParsedAndValidates() throws {
        let template = try TemplateParser.parse(yaml: try Fixtures.text("good/etl.yaml"), file: "etl.yaml")
        let schema = try #require(template.inputSchema)
        #expect(schema.types == [.object])
        #expect(schema.required == ["orders"])
        #expect(schema.properties?["currency"]?.enumValues == ["EUR", "USD"])
        let bad: JSONValue = ["orders": [["id": "seven", "region": "eu", "amount": 3]], "currency": "GBP"]
        let paths = schema.validate(bad).map(\.path).sorted()
        #expect(paths == ["context.currency", "context.orders[0].id"])
    }
}

@Suite(.timeLimit(.minutes(3))) struct NormalizedDefinitionTests {
    @Test(arguments: ["linear", "diamond", "etl"])
    func roundTripsThroughJSON(_ name: String) throws {
        let template = try TemplateParser.parse(yaml: try Fixtures.text("good/\(name).yaml"), file: name)
        let json = try template.normalizedJSON()
        #expect(try WorkflowTemplate(normalizedJSON: json) == template)
        #expect(try template.normalizedJSON() == json, "encoding must be deterministic")
    }

    @Test func usesSnakeCaseAndMilliseconds() throws {
        let template = try Fixtures.template("""
            namespace: shop
            name: encoded
            version: 2.0.0-rc.1
            steps:
              - name: a
                handler: shop.a
              - name: b
                depends_on: [a]
                command: {argv: [echo, hi], env: {X: "1"}}
                timeout: 90s
            """)
        let json = try template.normalizedJSON()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["version"] as? String == "2.0.0-rc.1")
        let steps = try #require(object["steps"] as? [[String: Any]])
        #expect(steps[0]["handler"] as? String == "shop.a")
        #expect(steps[0]["command"] == nil)
        #expect(steps[1]["handler"] == nil)
        #expect(steps[1]["timeout_ms"] as? Int == 90_000)
        #expect(steps[1]["depends_on"] as? [String] == ["a"])
        let retry = try #require(steps[1]["retry"] as? [String: Any])
        #expect(Set(retry.keys) == ["max_attempts", "backoff", "initial_delay_ms", "max_delay_ms", "jitter"])
        #expect(retry["initial_delay_ms"] as? Int == 1_000)
        #expect(json.contains(#""command":{"argv":["echo","hi"],"env":{"X":"1"}}"#))
    }
}

@Suite(.timeLimit(.minutes(3))) struct InlineErrorTests {
    static let header = "namespace: shop\nname: inline\nversion: 1.0.0\n"

    @Test(arguments: [
        ("steps:\n  - {name: a, handler: h.a}\n  - {name: b, handler: h.b, depends_on: [a, a]}\n",
         "steps[1].depends_on[1]", "lists 'a' twice in depends_on"),
        ("input_schema:\n  type: object\n  required: [emial]\n  properties: {email: {type: string}}\nsteps: [{name: a, handler: h.a}]\n",
         "input_schema.required[0]", "required property 'emial' is not listed under properties; did you mean 'email'?"),
        ("steps:\n  - {name: a, handler: h.a, retry: {jitter: maybe}}\n",
         "steps[0].retry.jitter", "jitter must be true or false, got the text 'maybe'"),
        ("steps:\n  - {name: a, command: {argv: [], env: {1X: y}}}\n",
         "steps[0].command.argv", "command has no arguments"),
        ("steps:\n  - {name: a, command: {argv: [x], env: {1X: y}}}\n",
         "steps[0].command.env", "environment variable name '1X' is invalid"),
        ("steps:\n  - {name: a, handler: h.a, timeout: 0s}\n",
         "steps[0].timeout", "timeout must be longer than 0s"),
        ("steps: {name: a}\n",
         "steps", "steps must be a list, got a mapping"),
        ("input_schema: {type: object, enum: []}\nsteps: [{name: a, handler: h.a}]\n",
         "input_schema.enum", "enum is empty"),
    ])
    func reports(_ body: String, _ path: String, _ message: String) {
        #expect {
            try TemplateParser.parse(yaml: Self.header + body, file: "inline.yaml")
        } throws: { error in
            let issues = (error as? TemplateValidationError)?.issues ?? []
            let found = issues.contains { $0.path == path && $0.message.contains(message) }
            if !found { print(issues) }
            return found
        }
    }
}
