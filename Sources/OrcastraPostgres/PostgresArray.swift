/// One-dimensional arrays in PostgreSQL's text form: `{1,2,"a b",NULL}`.
public protocol PostgresArrayElement: PostgresCodable {
    /// The OID of the array type whose elements are `Self` (int8 → int8[]).
    static var postgresArrayType: PostgresDataType { get }
}

extension Int: PostgresArrayElement { public static var postgresArrayType: PostgresDataType { .int8Array } }
extension Int64: PostgresArrayElement { public static var postgresArrayType: PostgresDataType { .int8Array } }
extension Int32: PostgresArrayElement { public static var postgresArrayType: PostgresDataType { .int4Array } }
extension String: PostgresArrayElement { public static var postgresArrayType: PostgresDataType { .textArray } }
extension Bool: PostgresArrayElement { public static var postgresArrayType: PostgresDataType { .boolArray } }
extension Double: PostgresArrayElement { public static var postgresArrayType: PostgresDataType { .float8Array } }
extension JSONText: PostgresArrayElement { public static var postgresArrayType: PostgresDataType { .jsonbArray } }

import struct Foundation.UUID
import struct Foundation.Date
extension UUID: PostgresArrayElement { public static var postgresArrayType: PostgresDataType { .uuidArray } }
extension Date: PostgresArrayElement { public static var postgresArrayType: PostgresDataType { .timestamptzArray } }

extension Optional: PostgresArrayElement where Wrapped: PostgresArrayElement {
    public static var postgresArrayType: PostgresDataType { Wrapped.postgresArrayType }
}

extension Array: PostgresEncodable where Element: PostgresArrayElement {
    public static var postgresType: PostgresDataType { Element.postgresArrayType }
    public var postgresText: String? {
        var text = "{"
        for (index, element) in enumerated() {
            if index > 0 { text += "," }
            guard let value = element.postgresText else {
                text += "NULL"
                continue
            }
            text += "\""
            for character in value {
                if character == "\"" || character == "\\" { text += "\\" }
                text.append(character)
            }
            text += "\""
        }
        return text + "}"
    }
}

extension Array: PostgresDecodable where Element: PostgresArrayElement {
    public init(postgresText text: String, type: PostgresDataType) throws {
        let items = try PostgresArrayParser.parse(text)
        self = try items.map { item in
            guard let item else { return try Element.postgresNull() }
            return try Element(postgresText: item, type: .unspecified)
        }
    }
}

enum PostgresArrayParser {
    /// Splits a one-dimensional array literal into its elements; nil is NULL.
    static func parse(_ text: String) throws -> [String?] {
        var characters = Substring(text)
        // An explicit lower bound prefix such as "[0:2]=" may precede the braces.
        if characters.first == "[", let equals = characters.firstIndex(of: "=") {
            characters = characters[characters.index(after: equals)...]
        }
        guard characters.first == "{", characters.last == "}" else {
            throw PostgresDecodingFailure("not an array literal")
        }
        let body = characters.dropFirst().dropLast()
        if body.isEmpty { return [] }
        var items: [String?] = []
        var current = ""
        var quoted = false
        var wasQuoted = false
        var escaped = false
        for character in body {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "\"" {
                quoted.toggle()
                wasQuoted = true
            } else if character == "{" && !quoted {
                throw PostgresDecodingFailure("multi-dimensional arrays are not supported")
            } else if character == "," && !quoted {
                items.append(!wasQuoted && current == "NULL" ? nil : current)
                current = ""
                wasQuoted = false
            } else {
                current.append(character)
            }
        }
        items.append(!wasQuoted && current == "NULL" ? nil : current)
        return items
    }
}
