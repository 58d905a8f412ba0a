import Foundation

/// A Swift value that can be sent as a bind parameter, in PostgreSQL's text format.
public protocol PostgresEncodable: Sendable {
    /// The parameter's type; `.unspecified` lets the server infer it from the statement.
    static var postgresType: PostgresDataType { get }
    /// The text form, or nil for NULL.
    var postgresText: String? { get }
}

/// A Swift value that can be read from a result column in PostgreSQL's text format.
public protocol PostgresDecodable: Sendable {
    /// Decodes a non-NULL value. `type` is the column's type, for types with several text forms.
    init(postgresText text: String, type: PostgresDataType) throws
    /// What SQL NULL decodes to; non-optional types throw.
    static func postgresNull() throws -> Self
}

public typealias PostgresCodable = PostgresEncodable & PostgresDecodable

/// Thrown by decoders; `PostgresRow` wraps it with the column name and value.
public struct PostgresDecodingFailure: Error, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}

extension PostgresDecodable {
    public static func postgresNull() throws -> Self {
        throw PostgresDecodingFailure("unexpected NULL; decode into an Optional to accept NULL")
    }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public static var postgresType: PostgresDataType { Wrapped.postgresType }
    public var postgresText: String? { self?.postgresText }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public init(postgresText text: String, type: PostgresDataType) throws {
        self = .some(try Wrapped(postgresText: text, type: type))
    }
    public static func postgresNull() throws -> Self { nil }
}

// MARK: - Text

extension String: PostgresCodable {
    /// Unspecified, so one string parameter can feed text, varchar, jsonb or an enum-like column.
    public static var postgresType: PostgresDataType { .unspecified }
    public var postgresText: String? { self }
    public init(postgresText text: String, type: PostgresDataType) throws { self = text }
}

// MARK: - Integers

public protocol PostgresInteger: PostgresCodable, FixedWidthInteger {}

extension PostgresInteger {
    public var postgresText: String? { String(self) }
    public init(postgresText text: String, type: PostgresDataType) throws {
        guard let value = Self(text) else {
            throw PostgresDecodingFailure("not an integer in the range of \(Self.self)")
        }
        self = value
    }
}

extension Int: PostgresInteger { public static var postgresType: PostgresDataType { .int8 } }
extension Int64: PostgresInteger { public static var postgresType: PostgresDataType { .int8 } }
extension Int32: PostgresInteger { public static var postgresType: PostgresDataType { .int4 } }
extension Int16: PostgresInteger { public static var postgresType: PostgresDataType { .int2 } }

// MARK: - Bool, Double

extension Bool: PostgresCodable {
    public static var postgresType: PostgresDataType { .bool }
    public var postgresText: String? { self ? "t" : "f" }
    public init(postgresText text: String, type: PostgresDataType) throws {
        switch text {
        case "t", "true": self = true
        case "f", "false": self = false
        default: throw PostgresDecodingFailure("not a boolean")
        }
    }
}

extension Double: PostgresCodable {
    public static var postgresType: PostgresDataType { .float8 }
    public var postgresText: String? {
        if isNaN { return "NaN" }
        if isInfinite { return self > 0 ? "Infinity" : "-Infinity" }
        return "\(self)"
    }
    public init(postgresText text: String, type: PostgresDataType) throws {
        switch text {
        case "NaN": self = .nan
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        default:
            guard let value = Double(text) else { throw PostgresDecodingFailure("not a number") }
            self = value
        }
    }
}

// MARK: - UUID

extension UUID: PostgresCodable {
    public static var postgresType: PostgresDataType { .uuid }
    public var postgresText: String? { uuidString.lowercased() }
    public init(postgresText text: String, type: PostgresDataType) throws {
        guard let value = UUID(uuidString: text) else { throw PostgresDecodingFailure("not a UUID") }
        self = value
    }
}

// MARK: - bytea

extension Data: PostgresCodable {
    public static var postgresType: PostgresDataType { .bytea }
    public var postgresText: String? {
        let digits = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = [UInt8(ascii: "\\"), UInt8(ascii: "x")]
        bytes.reserveCapacity(2 + count * 2)
        for byte in self {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
    public init(postgresText text: String, type: PostgresDataType) throws {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"), utf8.count % 2 == 0 else {
            throw PostgresDecodingFailure("bytea is not in hex format")
        }
        var data = Data(capacity: (utf8.count - 2) / 2)
        var index = 2
        while index < utf8.count {
            guard let high = Self.hexValue(utf8[index]), let low = Self.hexValue(utf8[index + 1]) else {
                throw PostgresDecodingFailure("bytea has a non-hex digit")
            }
            data.append(high << 4 | low)
            index += 2
        }
        self = data
    }
    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

// MARK: - JSON

/// A `Codable` value stored as jsonb: `\(try Jsonb(order))` binds it, `row.decode(Jsonb<Order>.self, …)` reads it.
public struct Jsonb<Value: Codable & Sendable>: PostgresCodable {
    public var value: Value
    /// The JSON text, made once when the value is wrapped so an encoding failure is thrown there.
    public let json: String

    public init(_ value: Value) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        self.value = value
        json = String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    public static var postgresType: PostgresDataType { .jsonb }
    public var postgresText: String? { json }
    public init(postgresText text: String, type: PostgresDataType) throws {
        do {
            value = try JSONDecoder().decode(Value.self, from: Data(text.utf8))
            json = text
        } catch {
            throw PostgresDecodingFailure("JSON does not match \(Value.self): \(error)")
        }
    }
}

/// JSON text that is already serialized, bound as jsonb without re-encoding.
public struct JSONText: PostgresCodable, Hashable, CustomStringConvertible {
    public var text: String
    public init(_ text: String) { self.text = text }
    public static var postgresType: PostgresDataType { .jsonb }
    public var postgresText: String? { text }
    public init(postgresText text: String, type: PostgresDataType) throws { self.text = text }
    public var description: String { text }
}
