import Foundation
import Testing
@testable import OrcastraTemplates

/// Issue 11: numbers, strictness and depth of `JSONValue(parsing:)` and `jsonText`.
@Suite struct JSONFidelityTests {
    /// A number goes out exactly as it came in: `500.0` stays `500.0`, integers beyond Int64 stay integers.
    @Test(arguments: [
        "500.0", "-0.0", "2.50", "1e2", "1E-7", "0.1", "-9223372036854775808",
        "9223372036854775809", "18446744073709551616", "170141183460469231731687303715884105727",
        "123456789012345678901234567890.123456789",
    ])
    func numbersKeepTheirExactText(_ number: String) throws {
        #expect(try JSONValue(parsing: #"{"n":\#(number)}"#).jsonText == #"{"n":\#(number)}"#)
        #expect(try JSONValue(parsing: " [ \(number) ] ").jsonText == "[\(number)]")
    }

    /// Numbers compare by value, as PostgreSQL's jsonb does (`'1.0'::jsonb = '1'::jsonb`).
    @Test func numbersCompareByValue() throws {
        let equal = [("1", "1.0"), ("100", "1e2"), ("0", "-0.0"), ("2.5", "25e-1"), ("0.10", "0.1")]
        for (a, b) in equal {
            let (x, y) = (try JSONValue(parsing: a), try JSONValue(parsing: b))
            #expect(x == y, "\(a) == \(b)")
            #expect(x.hashValue == y.hashValue, "hash \(a) == hash \(b)")
        }
        #expect(try JSONValue(parsing: "18446744073709551616") != JSONValue(parsing: "18446744073709551617"))
        #expect(try JSONValue(parsing: "0.1") != JSONValue(parsing: "0.10000000000000001"))
    }

    /// `enum` compares exactly; big integers that round to the same Double are different values.
    @Test func schemaEnumAndIntegerUseExactNumbers() throws {
        let schema = JSONSchema(enumValues: [try JSONValue(parsing: "18446744073709551617"), 1, 2.5])
        #expect(schema.validate(try JSONValue(parsing: "18446744073709551616")).count == 1)
        #expect(schema.validate(try JSONValue(parsing: "18446744073709551617")).isEmpty)
        #expect(schema.validate(try JSONValue(parsing: "1.0")).isEmpty)
        #expect(schema.validate(try JSONValue(parsing: "2.50")).isEmpty)
        let integer = JSONSchema(types: [.integer])
        for whole in ["2.0", "1e2", "18446744073709551616", "-0", "1.50e1"] {
            #expect(integer.validate(try JSONValue(parsing: whole)).isEmpty, "\(whole)")
        }
        for fraction in ["2.5", "1e-1", "18446744073709551616.5"] {
            #expect(integer.validate(try JSONValue(parsing: fraction)).first?.message == "must be an integer, got number", "\(fraction)")
        }
    }

    /// Strict RFC 8259: every case names the problem at a 1-based line and column (in characters).
    @Test(arguments: [
        (#"{"a": 1,}"#, 1, 8, "trailing comma before '}'"),
        ("[1, 2,]", 1, 6, "trailing comma before ']'"),
        ("{\n  \"a\": 1,\n}", 2, 9, "trailing comma before '}'"),
        ("[\"é\",]", 1, 5, "trailing comma before ']'"),
        ("// note\n{}", 1, 1, "comments are not allowed"),
        ("[1 /* x */]", 1, 4, "comments are not allowed"),
        ("{} // x", 1, 4, "comments are not allowed"),
        ("01", 1, 1, "leading zero"),
        ("[-012]", 1, 2, "leading zero"),
        ("NaN", 1, 1, "NaN"),
        ("[-Infinity]", 1, 2, "Infinity"),
        ("\"a\tb\"", 1, 3, "control character U+0009"),
        ("\"a\u{1}b\"", 1, 3, "control character U+0001"),
        (#""\ud800""#, 1, 2, "surrogate"),
        (#"["\udc00x"]"#, 1, 3, "surrogate"),
        (#""\ud800\u0041""#, 1, 2, "surrogate"),
        ("{} x", 1, 4, "after the JSON value"),
        (#"{"a":1}}"#, 1, 8, "after the JSON value"),
        ("1 2", 1, 3, "after the JSON value"),
        ("[1.]", 1, 4, "digit"),
        (".5", 1, 1, "expected a JSON value"),
        ("1e", 1, 3, "digit"),
        ("+1", 1, 1, "expected a JSON value"),
        ("tru", 1, 1, "true"),
        ("'a'", 1, 1, "double quotes"),
        ("[1,,2]", 1, 4, "expected a JSON value"),
        (#"{"a" 1}"#, 1, 6, "expected ':'"),
        ("{1: 2}", 1, 2, "keys must be strings"),
        ("\"abc", 1, 1, "not closed"),
        (#""\x""#, 1, 2, "invalid escape"),
        ("1e999", 1, 1, "too large"),
        ("[1, 2", 1, 6, "ends too early"),
        ("", 1, 1, "empty"),
    ] as [(String, Int, Int, String)])
    func invalidJSONIsRefusedWithItsPosition(_ text: String, _ line: Int, _ column: Int, _ problem: String) {
        #expect {
            _ = try JSONValue(parsing: text)
        } throws: { error in
            let message = (error as? JSONValueParseError)?.message ?? "\(error)"
            return message.hasPrefix("invalid JSON at line \(line), column \(column): ") && message.contains(problem)
        }
    }

    /// 500 levels in 1 KB used to take seconds; now refused at once, without deep recursion.
    @Test func deepNestingIsRefusedAtOnce() {
        for (open, close) in [("[", "]"), (#"{"a":"#, "}")] {
            let text = String(repeating: open, count: 500) + "1" + String(repeating: close, count: 500)
            let start = ContinuousClock.now
            #expect {
                _ = try JSONValue(parsing: text)
            } throws: { error in
                let message = (error as? JSONValueParseError)?.message ?? "\(error)"
                return message.hasSuffix("nested deeper than 128 levels at line 1, column \(128 * open.count + 1)")
            }
            #expect(ContinuousClock.now - start < .milliseconds(200))
        }
    }

    /// 128 levels are accepted, and comparing, hashing and dropping such a value is safe on a
    /// small thread stack (a task's).
    @Test func maximumDepthIsAcceptedAndSafe() async throws {
        let text = String(repeating: #"{"a":["#, count: 64) + "1" + String(repeating: "]}", count: 64)
        let value = try JSONValue(parsing: text)
        let same = try JSONValue(parsing: text)
        let survived = await Task.detached {
            var set: Set<JSONValue> = [value]
            set.insert(same)
            return set.count == 1 && value == same && value.jsonText == text
        }.value
        #expect(survived)
    }

    /// Strings are escaped as RFC 8259 asks; U+2028 and non-ASCII travel raw.
    @Test func stringsAreEscapedExactly() throws {
        let value: JSONValue = ["k\u{1}": "\u{0}\u{1}\u{1F}\"\\/\u{7F}\u{2028}é𝄞\n\r\t\u{8}\u{C}"]
        let expected = #"{"k\u0001":"\u0000\u0001\u001f\"\\/"# + "\u{7F}\u{2028}é𝄞" + #"\n\r\t\b\f"}"#
        #expect(value.jsonText == expected)
        #expect(try JSONValue(parsing: expected) == value)
    }

    /// Duplicate keys: the last one wins, as in PostgreSQL's jsonb.
    @Test func duplicateKeysKeepTheLast() throws {
        #expect(try JSONValue(parsing: #"{"a": 1, "b": 0, "a": 2}"#) == ["a": 2, "b": 0])
    }
}
