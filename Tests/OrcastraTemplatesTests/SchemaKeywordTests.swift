import Foundation
import Testing
@testable import OrcastraTemplates

/// The validation keywords of issue 19 ("The input schema grows"): read from YAML, checked for
/// contradictions where they are written, applied field by field to a context.
@Suite(.timeLimit(.minutes(3))) struct SchemaKeywordTests {
    static let header = "namespace: shop\nname: keywords\nversion: 1.0.0\nsteps: [{name: a, handler: h.a}]\n"

    static let yaml = """
        input_schema:
          type: object
          required: [customer_id, amount]
          additionalProperties: false
          properties:
            customer_id: {type: string, format: uuid}
            amount: {type: number, exclusiveMinimum: 0, maximum: 10000.50}
            quantity: {type: integer, minimum: 1, exclusiveMaximum: 100}
            code: {type: string, minLength: 3, maxLength: 8, pattern: '^[A-Z]+[0-9]*$'}
            email: {type: string, format: email}
            site: {type: string, format: uri}
            day: {type: string, format: date}
            at: {type: string, format: date-time}
            tags: {type: array, minItems: 1, maxItems: 3, uniqueItems: true, items: {type: string}}
            kind: {const: refund}
            tier: {enum: [standard, express, null]}
            extra: {type: object, additionalProperties: {type: integer}}

        """

    static func schema() throws -> JSONSchema {
        try #require(try TemplateParser.parse(yaml: header + yaml, file: "inline.yaml").inputSchema)
    }

    static let good: JSONValue = [
        "customer_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "amount": 0.01, "quantity": 99,
        "code": "ABC12", "email": "ann@example.com", "site": "https://example.com/a?b=c", "day": "2024-02-29",
        "at": "2026-12-01T09:30:00.25+01:00", "tags": ["a", "b"], "kind": "refund", "tier": nil,
        "extra": ["n": 1],
    ]

    @Test func aConformingContextPasses() throws {
        #expect(try Self.schema().validate(Self.good) == [])
    }

    static func with(_ key: String, _ value: JSONValue) -> JSONValue {
        guard case .object(var object) = good else { return good }
        object[key] = value
        return .object(object)
    }

    @Test(arguments: [
        ("amount", 0, "context.amount", "must be greater than 0, got 0"),
        ("amount", 10000.51, "context.amount", "must be at most 10000.50, got 10000.51"),
        ("quantity", 0, "context.quantity", "must be at least 1, got 0"),
        ("quantity", 100, "context.quantity", "must be less than 100, got 100"),
        ("code", "AB", "context.code", "must be at least 3 characters long, got 2"),
        ("code", "ABCDEFGHI", "context.code", "must be at most 8 characters long, got 9"),
        ("code", "abc", "context.code", #"must match the pattern ^[A-Z]+[0-9]*$, got "abc""#),
        ("customer_id", "7c9e6679-7425-40de-944b-e07fc1f90ae", "context.customer_id", "must be a UUID"),
        ("email", "ann.example.com", "context.email", "must be an email address (it needs exactly one '@')"),
        ("email", "ann@example", "context.email", "must be an email address (the domain"),
        ("site", "example.com/a", "context.site", "must be an absolute URI (it needs a scheme"),
        ("site", "https://exa mple.com", "context.site", "must be an absolute URI (it must not contain spaces"),
        ("day", "2023-02-29", "context.day", "must be an RFC 3339 date (day 29 does not exist in that month)"),
        ("day", "2023-13-01", "context.day", "must be an RFC 3339 date (month 13 does not exist)"),
        ("at", "2026-12-01 09:30:00Z", "context.at", "must be an RFC 3339 date-time"),
        ("at", "2026-12-01T09:30:00", "context.at", "must be an RFC 3339 date-time (it needs a time zone"),
        ("at", "2026-12-01T24:00:00Z", "context.at", "must be an RFC 3339 date-time (the time 24:0:0 does not exist)"),
        ("tags", [], "context.tags", "must have at least 1 item, got 0"),
        ("tags", ["a", "b", "c", "d"], "context.tags", "must have at most 3 items, got 4"),
        ("tags", ["a", "b", "a"], "context.tags[2]", "repeats context.tags[0] (uniqueItems is true)"),
        ("kind", "refnd", "context.kind", #"must be "refund", got "refnd""#),
        ("tier", "slow", "context.tier", "must be one of: standard, express, null; got slow"),
        ("extra", ["n": "one"], "context.extra.n", "must be an integer, got string"),
        ("amout", 5, "context.amout", "is not allowed (additionalProperties is false); did you mean 'amount'?"),
    ] as [(String, JSONValue, String, String)])
    func eachKeywordReportsItsField(_ key: String, _ value: JSONValue, _ path: String, _ message: String) throws {
        let violations = try Self.schema().validate(Self.with(key, value))
        #expect(violations.contains { $0.path == path && $0.message.hasPrefix(message) }, "\(violations)")
        #expect(violations.count == 1, "\(violations)")
    }

    @Test func numbersCompareExactly() {
        let schema = JSONSchema(types: [.integer])
        var bounded = schema
        bounded.maximum = JSONNumber("9007199254740992")
        #expect(bounded.validate(.number(JSONNumber("9007199254740992")!)) == [])
        // Both round to the same Double; the bound still holds.
        #expect(bounded.validate(.number(JSONNumber("9007199254740993")!)).count == 1)
        #expect(JSONNumber("1e2")!.compare(to: 100) == 0)
        #expect(JSONNumber("-2.5")!.compare(to: JSONNumber("-2.25")!) == -1)
        #expect(JSONNumber("0.001")!.compare(to: JSONNumber("-1000")!) == 1)
        #expect(JSONNumber("-0")!.compare(to: 0) == 0)
    }

    @Test func stringLengthCountsCodePoints() {
        var schema = JSONSchema(types: [.string])
        schema.maxLength = 2
        #expect(schema.validate("é😀") == [])
        #expect(schema.validate("abc").count == 1)
    }

    @Test func theStoredDefinitionRoundTrips() throws {
        let template = try TemplateParser.parse(yaml: Self.header + Self.yaml, file: "inline.yaml")
        let json = try template.normalizedJSON()
        #expect(json.contains(#""additionalProperties":false"#))
        #expect(json.contains(#""exclusiveMinimum":0"#))
        #expect(json.contains(#""format":"date-time""#))
        #expect(try WorkflowTemplate(normalizedJSON: json) == template)
        var nullConst = JSONSchema()
        nullConst.constValue = .null
        let decoded = try JSONDecoder().decode(JSONSchema.self, from: JSONEncoder().encode(nullConst))
        #expect(decoded.constValue == .some(.null))
        #expect(decoded.validate(1).count == 1)
    }

    /// Every new refusal, located at the offending value (line and column) with its path.
    @Test(arguments: [
        ("input_schema: {type: string, minLength: -1}\n", 5, 41, "input_schema.minLength", "minLength must be 0 or more, got -1"),
        ("input_schema: {type: string, maxLength: 2.5}\n", 5, 41, "input_schema.maxLength", "maxLength must be a whole number"),
        ("input_schema: {type: string, pattern: '(a'}\n", 5, 39, "input_schema.pattern", "pattern '(a' is not a valid regular expression: expected ')'"),
        ("input_schema: {type: string, format: e-mail}\n", 5, 38, "input_schema.format", "unknown format 'e-mail'; did you mean 'email'?"),
        ("input_schema: {type: string, format: ipv4}\n", 5, 38, "input_schema.format", "Orcastra checks these formats: date-time, date, email, uuid, uri"),
        ("input_schema: {type: integer, minimum: ten}\n", 5, 40, "input_schema.minimum", "minimum must be a number, got the text 'ten'"),
        ("input_schema: {type: integer, minimum: 5, maximum: 1}\n", 5, 40, "input_schema.minimum", "minimum (5) is above maximum (1)"),
        ("input_schema: {type: string, minLength: 4, maxLength: 3}\n", 5, 41, "input_schema.minLength", "minLength (4) is above maxLength (3)"),
        ("input_schema: {type: array, minItems: 2, maxItems: 1}\n", 5, 39, "input_schema.minItems", "minItems (2) is above maxItems (1)"),
        ("input_schema: {type: array, uniqueItems: yes please}\n", 5, 42, "input_schema.uniqueItems", "uniqueItems must be true or false"),
        ("input_schema: {type: object, additionalProperties: 3}\n", 5, 52, "input_schema.additionalProperties", "additionalProperties must be true, false or a schema"),
        ("input_schema: {type: object, additionalProperties: {type: int}}\n", 5, 59, "input_schema.additionalProperties.type", "unknown type 'int'; did you mean 'integer'?"),
        ("input_schema: {type: string, minimum: 1}\n", 5, 30, "input_schema.minimum", "minimum only applies to numbers, but this schema's type is string"),
        ("input_schema: {type: integer, pattern: x}\n", 5, 31, "input_schema.pattern", "pattern only applies to strings"),
        ("input_schema: {type: string, min_length: 3}\n", 5, 30, "input_schema.min_length", "unknown key 'min_length' in the schema; did you mean 'minLength'?"),
        ("input_schema: {type: string, maxLenght: 3}\n", 5, 30, "input_schema.maxLenght", "did you mean 'maxLength'?"),
        ("input_schema:\n  type: object\n  properties:\n    code: {type: string, pattern: '[z-a]'}\n", 8, 35,
         "input_schema.properties.code.pattern", "pattern '[z-a]' is not a valid regular expression"),
    ] as [(String, Int, Int, String, String)])
    func badKeywordValuesAreLocated(_ body: String, _ line: Int, _ column: Int, _ path: String, _ message: String) {
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
