/// A SQL statement whose interpolated values become bind parameters (`$1`, `$2`, …).
///
/// `"SELECT * FROM t WHERE id = \(id)"` never splices `id` into the text, so SQL injection is
/// impossible by construction. Text that must be spliced (an identifier, a generated fragment) needs
/// the visible escape hatch `\(unescaped: …)` or `SQL(unsafeRaw:)`.
public struct SQL: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    public private(set) var text: String
    public private(set) var bindings: [PostgresBinding]

    public init(stringLiteral value: String) {
        text = value
        bindings = []
    }

    public init(stringInterpolation: StringInterpolation) {
        text = stringInterpolation.text
        bindings = stringInterpolation.bindings
    }

    /// Raw SQL text with no parameters. The name is loud on purpose: only pass trusted text.
    public init(unsafeRaw text: String) {
        self.text = text
        bindings = []
    }

    public var description: String { text }

    /// Appends another fragment, renumbering its parameters.
    public mutating func append(_ other: SQL) {
        text += Self.renumber(other.text, offset: bindings.count)
        bindings += other.bindings
    }

    public static func + (lhs: SQL, rhs: SQL) -> SQL {
        var result = lhs
        result.append(rhs)
        return result
    }

    /// Shifts `$n` placeholders by `offset`. Fragments are built by interpolation, so `$` followed
    /// by digits only ever is one of our placeholders.
    static func renumber(_ text: String, offset: Int) -> String {
        guard offset > 0, text.contains("$") else { return text }
        var result = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character == "$" {
                var end = text.index(after: index)
                while end < text.endIndex, text[end].isASCII, text[end].isNumber { end = text.index(after: end) }
                if end > text.index(after: index), let number = Int(text[text.index(after: index)..<end]) {
                    result += "$\(number + offset)"
                    index = end
                    continue
                }
            }
            result.append(character)
            index = text.index(after: index)
        }
        return result
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var text = ""
        var bindings: [PostgresBinding] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            text.reserveCapacity(literalCapacity + interpolationCount * 3)
        }

        public mutating func appendLiteral(_ literal: String) {
            text += literal
        }

        /// A value, sent as a bind parameter.
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value) {
            bindings.append(PostgresBinding(value))
            text += "$\(bindings.count)"
        }

        /// An optional value: NULL when nil.
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value?) {
            bindings.append(PostgresBinding(value))
            text += "$\(bindings.count)"
        }

        /// A nested fragment with its own parameters.
        public mutating func appendInterpolation(_ fragment: SQL) {
            text += SQL.renumber(fragment.text, offset: bindings.count)
            bindings += fragment.bindings
        }

        /// Trusted text spliced as is: identifiers, keywords. Never user input.
        public mutating func appendInterpolation(unescaped text: String) {
            self.text += text
        }
    }
}

/// One bind parameter in PostgreSQL's text format; `nil` text is SQL NULL.
public struct PostgresBinding: Sendable {
    public var text: String?
    public var type: PostgresDataType

    public init<Value: PostgresEncodable>(_ value: Value) {
        text = value.postgresText
        type = Value.postgresType
    }
}
