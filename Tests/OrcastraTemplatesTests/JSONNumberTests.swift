import Foundation
import Testing
@testable import OrcastraTemplates

/// Issue 11: the API numbers, invalid UTF-8 and jsonb's limits need (new with the exact parser).
@Suite struct JSONNumberTests {
    @Test func accessorsAreExact() throws {
        #expect(JSONNumber("500.0")?.int64Value == 500)
        #expect(JSONNumber("1e2")?.int64Value == 100)
        #expect(JSONNumber("-9223372036854775808")?.int64Value == .min)
        #expect(JSONNumber("9223372036854775808")?.int64Value == nil)
        #expect(JSONNumber("2.5")?.int64Value == nil)
        #expect(JSONNumber("2.5")?.doubleValue == 2.5)
        #expect(JSONNumber("18446744073709551616")?.decimal == Decimal(string: "18446744073709551616"))
        #expect(JSONNumber("18446744073709551616")?.isInteger == true)
        #expect(JSONNumber("1.25e1")?.isInteger == false)
        for invalid in ["", " 1", "1 ", "01", "+1", ".5", "1.", "NaN", "1e999", "0x10", "--1"] {
            #expect(JSONNumber(invalid) == nil, "\(invalid)")
        }
        #expect(JSONNumber(500.0).text == "500.0")
        #expect(JSONNumber(Double.infinity) == nil)
        #expect(JSONNumber(UInt64.max).text == "18446744073709551615")
        let literals: JSONValue = ["a": 1, "b": 2.5, "c": .integer(-3)]
        #expect(literals.jsonText == #"{"a":1,"b":2.5,"c":-3}"#)
    }

    /// `Codable` still works for users (through the coder's number types, exact where Decimal is).
    @Test func codableRoundTripsThroughFoundation() throws {
        let value = try JSONValue(parsing: #"{"big":170141183460469231731687303715884105727,"n":[1,2.5,-0.125,null,true,"x"]}"#)
        let data = try JSONEncoder().encode(value)
        #expect(try JSONDecoder().decode(JSONValue.self, from: data) == value)
        #expect(String(decoding: data, as: UTF8.self).contains("170141183460469231731687303715884105727"))
    }

    @Test func invalidUTF8IsRefusedWithItsPosition() throws {
        for (bytes, column) in [([0x22, 0x61, 0xFF, 0x22], 3), ([0x5B, 0x22, 0xC0, 0xAF, 0x22, 0x5D], 3),
                                ([0x22, 0xED, 0xA0, 0x80, 0x22], 2), ([0x22, 0xE2, 0x82], 2), ([0xFE], 1)] as [([UInt8], Int)] {
            #expect {
                _ = try JSONValue(parsingUTF8: bytes)
            } throws: { error in
                let message = (error as? JSONValueParseError)?.message ?? ""
                return message.hasPrefix("invalid JSON at line 1, column \(column): invalid UTF-8")
            }
        }
        #expect(try JSONValue(parsingUTF8: Array(#"["é𝄞\u00e9"]"#.utf8)) == ["é𝄞é"])
    }

    @Test func depthCanBeChosen() throws {
        #expect(throws: JSONValueParseError.self) { try JSONValue(parsing: "[[[1]]]", maximumDepth: 2) }
        #expect(try JSONValue(parsing: "[[1]]", maximumDepth: 2) == [[1]])
        #expect(JSONValue.maximumDepth == 128)
        let atLimit = String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
        #expect(throws: Never.self) { try JSONValue(parsing: atLimit) }
    }

    /// `\u0000` is valid JSON and is read, but jsonb cannot store it: say where it is.
    @Test(arguments: [
        (#"{"a": {"b": [0, 1, "x\u0000"]}}"#, #"the string at $.a.b[2] contains a NUL character (\u0000), which PostgreSQL's jsonb cannot store"#),
        (#"{"ok": "", "a b": {"k\u0000": 1}}"#, #"the key "k\u0000" at $["a b"] contains a NUL character (\u0000), which PostgreSQL's jsonb cannot store"#),
        (#""\u0000""#, #"the string at $ contains a NUL character (\u0000), which PostgreSQL's jsonb cannot store"#),
    ])
    func unstorableValuesAreNamed(_ text: String, _ reason: String) throws {
        #expect(try JSONValue(parsing: text).unstorableReason() == reason)
    }

    @Test func storableValuesHaveNoReason() throws {
        #expect(try JSONValue(parsing: #"{"a": ["\u0001", "é", 1e-7, {"b": null}]}"#).unstorableReason() == nil)
        var deep: JSONValue = 1
        for _ in 0..<129 { deep = [deep] }
        #expect(deep.unstorableReason()?.hasSuffix("is nested deeper than 128 levels") == true)
    }
}
