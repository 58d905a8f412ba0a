import Foundation
import Testing
@testable import OrcastraTemplates

@Suite(.timeLimit(.minutes(3))) struct JSONValueTests {
    @Test func parsesEveryKind() throws {
        let value = try JSONValue(parsing: #"{"a": [1, 2.5, "x", true, null], "big": 9007199254740993}"#)
        #expect(value == ["a": [1, 2.5, "x", true, nil], "big": .integer(9_007_199_254_740_993)])
    }

    @Test func roundTripsThroughJSONText() throws {
        let value: JSONValue = ["id": 7, "tags": ["x", "y"], "price": 9.5, "gift": false, "note": nil]
        #expect(try JSONValue(parsing: value.jsonText) == value)
        #expect(value.jsonText == #"{"gift":false,"id":7,"note":null,"price":9.5,"tags":["x","y"]}"#)
    }

    @Test func parseErrorsAreExplained() {
        #expect {
            try JSONValue(parsing: #"{"a": 1,"#)
        } throws: { error in
            (error as? JSONValueParseError)?.message.hasPrefix("invalid JSON") == true
        }
    }
}

@Suite(.timeLimit(.minutes(3))) struct JSONSchemaTests {
    static let schema = JSONSchema(
        types: [.object],
        required: ["email", "items"],
        properties: [
            "email": JSONSchema(types: [.string]),
            "tier": JSONSchema(types: [.string], enumValues: ["standard", "express"]),
            "items": JSONSchema(types: [.array], items: JSONSchema(types: [.integer])),
            "note": JSONSchema(types: [.string, .null]),
        ]
    )

    @Test func acceptsAConformingValue() {
        let value: JSONValue = ["email": "a@b.c", "tier": "express", "items": [1, 2.0, 3], "note": nil]
        #expect(Self.schema.validate(value).isEmpty)
    }

    @Test(arguments: [
        (["items": []], "context.email", "is required"),
        (["email": 5, "items": []], "context.email", "must be a string, got integer"),
        (["email": "x", "items": [1, "two"]], "context.items[1]", "must be an integer, got string"),
        (["email": "x", "items": [1.5]], "context.items[0]", "must be an integer, got number"),
        (["email": "x", "items": [], "tier": "slow"], "context.tier", "must be one of: standard, express"),
        (["email": "x", "items": [], "note": 1], "context.note", "must be a string or null, got integer"),
        ("text", "context", "must be an object, got string"),
    ] as [(JSONValue, String, String)])
    func reportsViolations(_ value: JSONValue, _ path: String, _ message: String) {
        let violations = Self.schema.validate(value)
        #expect(violations.contains { $0.path == path && $0.message.hasPrefix(message) }, "\(violations)")
    }
}
