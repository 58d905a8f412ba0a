import Foundation

/// Any JSON value: task contexts, step results, `enum` values in a schema.
///
/// Numbers keep their JSON text (``JSONNumber``), so `500.0` stays `500.0` and integers beyond
/// 64 bits stay exact, as PostgreSQL's jsonb keeps them. Read JSON text with
/// ``init(parsing:maximumDepth:)`` and write it with ``jsonText``: both are exact. `Codable` works
/// too, but goes through the coder's number types (see ``JSONNumber``).
///
/// Equality and hashing compare numbers by value (`1`, `1.0` and `1e0` are equal), as
/// jsonb's `=` does.
public enum JSONValue: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// How deeply arrays and objects may nest in text ``init(parsing:maximumDepth:)`` reads.
    ///
    /// Deeper input is almost always an attack or a bug; the bound keeps parsing, comparing,
    /// hashing, printing and freeing values far from the limits of a thread's stack.
    public static let maximumDepth = 128

    /// A whole number (`.integer(42)` reads as before numbers kept their text).
    public static func integer(_ value: Int64) -> JSONValue { .number(JSONNumber(value)) }

    // MARK: Reading and writing JSON text

    /// Parses JSON text strictly (RFC 8259), with any value at the top level.
    ///
    /// Refused: trailing commas, comments, leading zeros, NaN/Infinity, numbers beyond the range
    /// of a Double (other JSON readers would turn them into infinity), unescaped control
    /// characters, lone surrogates in `\u` escapes, text after the value, and arrays or objects
    /// nested deeper than `maximumDepth`. A key given twice keeps its last value, as in jsonb.
    /// `\u0000` is valid JSON and is read; ``unstorableReason()`` tells whether jsonb can store it.
    ///
    /// - Throws: ``JSONValueParseError`` naming the problem, its line and its column.
    public init(parsing text: String, maximumDepth: Int = JSONValue.maximumDepth) throws(JSONValueParseError) {
        var text = text
        self = try text.withUTF8 { bytes in
            var parser = JSONParser(bytes: bytes, maximumDepth: maximumDepth)
            return Result { () throws(JSONValueParseError) in try parser.parse() }
        }.get()
    }

    /// Parses JSON from UTF-8 bytes; invalid UTF-8 is refused with its position.
    public init(parsingUTF8 bytes: some Collection<UInt8>, maximumDepth: Int = JSONValue.maximumDepth) throws(JSONValueParseError) {
        let array = Array(bytes)
        self = try array.withUnsafeBufferPointer { bytes in
            var parser = JSONParser(bytes: bytes, maximumDepth: maximumDepth)
            return Result { () throws(JSONValueParseError) in try parser.parse() }
        }.get()
    }

    /// Compact JSON text with sorted keys; numbers exactly as they were read or made.
    public var jsonText: String {
        var output: [UInt8] = []
        output.reserveCapacity(64)
        JSONWriter.write(self, to: &output)
        return String(decoding: output, as: UTF8.self)
    }

    /// The JSON type name used in schema messages (`integer` for whole numbers, `2.0` included).
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number(let number): number.isInteger ? "integer" : "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    // MARK: What PostgreSQL cannot store

    /// Why PostgreSQL's jsonb (or Orcastra reading it back) cannot store this value, or nil when
    /// it can. Call it before writing: the first problem found, in sorted-key order, e.g.
    /// `the string at $.a.b[2] contains a NUL character (\u0000), which PostgreSQL's jsonb cannot store`.
    ///
    /// Checks NUL characters in strings and keys (jsonb refuses them with SQLSTATE 22P05) and
    /// nesting deeper than ``maximumDepth`` (made in code; such a value could not be read back).
    public func unstorableReason() -> String? {
        // Iterative, so a value of any depth is checked without deep recursion.
        var nodes: [(parent: Int, step: PathStep)] = [(-1, .root)]
        var pending: [(value: JSONValue, node: Int, depth: Int)] = [(self, 0, 0)]
        func path(_ node: Int) -> String {
            var steps: [PathStep] = []
            var current = node
            while current >= 0 {
                steps.append(nodes[current].step)
                current = nodes[current].parent
            }
            return steps.reversed().map(\.text).joined()
        }
        let nul = "contains a NUL character (\\u0000), which PostgreSQL's jsonb cannot store"
        while let (value, node, depth) = pending.popLast() {
            switch value {
            case .string(let text) where text.utf8.contains(0):
                return "the string at \(path(node)) \(nul)"
            case .array(let elements):
                if depth >= Self.maximumDepth { return "the value at \(path(node)) is nested deeper than \(Self.maximumDepth) levels" }
                for (index, element) in elements.enumerated().reversed() {
                    nodes.append((node, .index(index)))
                    pending.append((element, nodes.count - 1, depth + 1))
                }
            case .object(let members):
                if depth >= Self.maximumDepth { return "the value at \(path(node)) is nested deeper than \(Self.maximumDepth) levels" }
                let keys = members.keys.sorted()
                if let key = keys.first(where: { $0.utf8.contains(0) }) {
                    return "the key \(JSONValue.string(key).jsonText) at \(path(node)) \(nul)"
                }
                for key in keys.reversed() {
                    nodes.append((node, .key(key)))
                    pending.append((members[key]!, nodes.count - 1, depth + 1))
                }
            default:
                break
            }
        }
        return nil
    }

    /// One step of a JSONPath such as `$.a.b[2]` or `$["a b"]`.
    private enum PathStep {
        case root, key(String), index(Int)

        var text: String {
            switch self {
            case .root: return "$"
            case .index(let index): return "[\(index)]"
            case .key(let key):
                let simple = key.utf8.first.map { !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } ?? false
                    && key.utf8.allSatisfy { $0 == UInt8(ascii: "_") || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }
                return simple ? ".\(key)" : "[\(JSONValue.string(key).jsonText)]"
            }
        }
    }

    // MARK: Codable

    /// Decodes through any `Decoder`. Numbers arrive as the decoder's Int64, Decimal or Double,
    /// so their text may change (`500.0` becomes `500`); use ``init(parsing:maximumDepth:)`` to
    /// keep it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(JSONNumber.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

/// JSON text that could not be read: what is wrong, and where.
public struct JSONValueParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, e.g. `trailing comma before '}'` or `nested deeper than 128 levels`.
    public var problem: String
    /// 1-based line of the problem.
    public var line: Int
    /// 1-based column of the problem, in Unicode scalars.
    public var column: Int
    /// 0-based offset of the problem in the UTF-8 bytes.
    public var byteOffset: Int
    /// True when the text is valid JSON but nested deeper than the limit.
    public var isTooDeep: Bool

    /// One sentence: `invalid JSON at line 2, column 7: trailing comma before '}'`, or
    /// `JSON nested deeper than 128 levels at line 1, column 129`.
    public var message: String {
        if isTooDeep {
            return "JSON \(problem) at line \(line), column \(column)"
        }
        return "invalid JSON at line \(line), column \(column): \(problem)"
    }

    public var description: String { message }
}

// MARK: - Numbers

/// A JSON number, kept as its exact text (validated: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`,
/// within the range of a Double).
///
/// Equality and hashing are by numeric value, exactly (decimal digits, no rounding): `1`, `1.0`
/// and `1e0` are equal, `18446744073709551616` and `18446744073709551617` are not; `0` and
/// `-0` are equal. This matches jsonb's `=`. ``text`` still tells them apart.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible, Codable,
                          ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral {
    /// The number's JSON text, as read or made.
    public let text: String

    /// Text already known to be a valid JSON number.
    init(validated text: String) {
        self.text = text
    }

    /// Nil unless `text` is exactly one JSON number (no spaces) within the range of a Double.
    public init?(_ text: String) {
        var text = text
        let valid = text.withUTF8 { bytes in
            var parser = JSONParser(bytes: bytes, maximumDepth: 0)
            guard let first = bytes.first, first == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first),
                  (try? parser.number()) != nil else { return false }
            return parser.index == bytes.count
        }
        guard valid else { return nil }
        self.text = text
    }

    public init<Integer: BinaryInteger>(_ value: Integer) {
        text = String(value)
    }

    /// Nil for infinity and NaN, which JSON cannot write. Uses Swift's shortest round-trip
    /// text: `JSONNumber(500.0)` is `500.0`, `JSONNumber(0.1)` is `0.1`.
    public init?(_ value: Double) {
        guard value.isFinite else { return nil }
        text = "\(value)"
    }

    public init(integerLiteral value: Int64) {
        self.init(value)
    }

    public init(floatLiteral value: Double) {
        precondition(value.isFinite, "JSON has no infinity or NaN")
        self.text = "\(value)"
    }

    public var description: String { text }

    /// The value when it is a whole number within Int64 (`2.0` and `1e2` too); nil otherwise.
    public var int64Value: Int64? {
        if let value = Int64(text) { return value }
        let decimal = DecimalDigits(text)
        guard decimal.exponent >= 0, decimal.digits.count + decimal.exponent <= 19 else { return nil }
        if decimal.digits.isEmpty { return 0 }
        let digits = String(decoding: decimal.digits, as: UTF8.self) + String(repeating: "0", count: decimal.exponent)
        return Int64((decimal.negative ? "-" : "") + digits)
    }

    /// The nearest Double (always finite: numbers beyond a Double's range are refused).
    public var doubleValue: Double {
        Double(text) ?? .nan
    }

    /// The value as Foundation's `Decimal` (at most 38 significant digits; longer ones round).
    public var decimal: Decimal? {
        Decimal(string: text, locale: Locale(identifier: "en_US_POSIX"))
    }

    /// Whether the value is whole: `2`, `2.0`, `1e2`, `-0`; not `2.5` or `1e-1`.
    public var isInteger: Bool {
        let decimal = DecimalDigits(text)
        return decimal.exponent >= 0 || decimal.digits.isEmpty
    }

    public static func == (a: JSONNumber, b: JSONNumber) -> Bool {
        a.text == b.text || DecimalDigits(a.text) == DecimalDigits(b.text)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(DecimalDigits(text))
    }

    /// Encodes as Int64, as a Decimal when that is exact, else as a Double: an `Encoder`
    /// has no way to write number text, so `500.0` goes out as `500` (the same value).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value = int64Value {
            try container.encode(value)
        } else if let decimal, let exact = JSONNumber(decimal.description), exact == self {
            try container.encode(decimal)
        } else {
            try container.encode(doubleValue)
        }
    }

    /// Decodes a number the decoder holds, as Int64, Decimal (when it agrees with the Double)
    /// or Double.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Int64.self) {
            self.init(value)
            return
        }
        let double = try container.decode(Double.self)
        guard let number = JSONNumber(double) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\(double) is not a JSON number")
        }
        if let decimal = try? container.decode(Decimal.self), let exact = JSONNumber(decimal.description),
           exact.doubleValue == double {
            self = exact
        } else {
            self = number
        }
    }
}

/// A number's exact value: sign, significant digits without leading or trailing zeros, and a
/// power of ten. Zero has no digits and is never negative.
struct DecimalDigits: Hashable {
    var negative = false
    var digits: [UInt8] = []
    var exponent = 0

    init(_ text: String) {
        var exponentValue = 0
        var fractionDigits = 0
        var inFraction = false
        var inExponent = false
        var exponentNegative = false
        var sawNonZero = false
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "-") where !inExponent: negative = true
            case UInt8(ascii: "-"): exponentNegative = true
            case UInt8(ascii: "+"): break
            case UInt8(ascii: "."): inFraction = true
            case UInt8(ascii: "e"), UInt8(ascii: "E"): inExponent = true
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                let digit = byte &- UInt8(ascii: "0")
                if inExponent {
                    // Saturates: a Double-range number never needs more, and 1e-99999999999 is 0.
                    exponentValue = min(exponentValue * 10 + Int(digit), 1_000_000_000)
                } else {
                    if inFraction { fractionDigits += 1 }
                    if digit != 0 || sawNonZero {
                        sawNonZero = true
                        digits.append(byte)
                    }
                }
            default: break
            }
        }
        exponent = (exponentNegative ? -exponentValue : exponentValue) - fractionDigits
        while digits.last == UInt8(ascii: "0") {
            digits.removeLast()
            exponent += 1
        }
        if digits.isEmpty {
            negative = false
            exponent = 0
        }
    }
}

// MARK: - Literals

extension JSONValue: ExpressibleByNilLiteral {
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue: ExpressibleByBooleanLiteral {
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension JSONValue: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int64) { self = .number(JSONNumber(value)) }
}

extension JSONValue: ExpressibleByFloatLiteral {
    public init(floatLiteral value: Double) { self = JSONNumber(value).map(JSONValue.number) ?? .null }
}

extension JSONValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}

extension JSONValue: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
}

extension JSONValue: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

// MARK: - Writer

/// Compact JSON with sorted keys. Recursive: values read by the parser are at most
/// `JSONValue.maximumDepth` deep, and deeper ones made in code are refused before storing
/// (``JSONValue/unstorableReason()``).
enum JSONWriter {
    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    static func write(_ value: JSONValue, to output: inout [UInt8]) {
        switch value {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let flag): output.append(contentsOf: (flag ? "true" : "false").utf8)
        case .number(let number): output.append(contentsOf: number.text.utf8)
        case .string(let text): writeString(text, to: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                write(element, to: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            for (index, key) in members.keys.sorted().enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                writeString(key, to: &output)
                output.append(UInt8(ascii: ":"))
                write(members[key]!, to: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// Escapes `"`, `\` and the C0 controls (short forms where JSON has them, else `\u00XX`);
    /// everything else, U+2028 included, is written as UTF-8.
    static func writeString(_ text: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x08: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0..<0x20:
                output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                           hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}
