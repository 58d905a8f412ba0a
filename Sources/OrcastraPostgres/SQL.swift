/// A SQL statement whose interpolated values become bind parameters (`$1`, `$2`, …).
///
/// `"SELECT * FROM t WHERE id = \(id)"` never splices `id` into the text, so SQL injection is
/// impossible by construction. Identifiers go through `\(ident: name)`, which quotes them. Text that
/// must be spliced as is (a keyword, a generated fragment) needs the visible escape hatch
/// `\(unescaped: …)` or `SQL(unsafeRaw:)`.
///
/// A statement is kept as literal text and references to its bindings; `$n` is only written when
/// the text is rendered. Composing fragments therefore never rewrites text, so `'costs $1'` in a
/// nested fragment stays exactly that.
public struct SQL: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    /// A piece of the statement: text sent as is, or the index of one of `bindings`.
    enum Part: Sendable {
        case literal(String)
        case binding(Int)
    }

    private var parts: [Part]
    /// The statement with its placeholders numbered, as the server receives it.
    public private(set) var text: String
    public private(set) var bindings: [PostgresBinding]
    /// Identifiers that cannot be quoted (they hold NUL); the statement is refused before sending.
    public private(set) var invalidIdentifiers: [String]

    public init(stringLiteral value: String) {
        self.init(parts: [.literal(value)], bindings: [], invalidIdentifiers: [])
    }

    public init(stringInterpolation: StringInterpolation) {
        self.init(parts: stringInterpolation.parts, bindings: stringInterpolation.bindings,
                  invalidIdentifiers: stringInterpolation.invalidIdentifiers)
    }

    /// Raw SQL text with no parameters. The name is loud on purpose: only pass trusted text.
    public init(unsafeRaw text: String) {
        self.init(parts: [.literal(text)], bindings: [], invalidIdentifiers: [])
    }

    private init(parts: [Part], bindings: [PostgresBinding], invalidIdentifiers: [String]) {
        self.parts = parts
        self.bindings = bindings
        self.invalidIdentifiers = invalidIdentifiers
        text = Self.render(parts, offset: 0)
    }

    public var description: String { text }

    /// Appends another fragment; its bindings follow this one's.
    public mutating func append(_ other: SQL) {
        let offset = bindings.count
        text += Self.render(other.parts, offset: offset)
        for part in other.parts {
            switch part {
            case .literal(let literal): Self.append(literal, to: &parts)
            case .binding(let index): parts.append(.binding(index + offset))
            }
        }
        bindings += other.bindings
        invalidIdentifiers += other.invalidIdentifiers
    }

    public static func + (lhs: SQL, rhs: SQL) -> SQL {
        var result = lhs
        result.append(rhs)
        return result
    }

    /// Quotes `name` as a PostgreSQL identifier: in double quotes, inner double quotes doubled.
    /// The case is kept (`"Orders"` is not `orders`).
    public static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    private static func render(_ parts: [Part], offset: Int) -> String {
        var text = ""
        for part in parts {
            switch part {
            case .literal(let literal): text += literal
            case .binding(let index): text += "$\(index + offset + 1)"
            }
        }
        return text
    }

    private static func append(_ literal: String, to parts: inout [Part]) {
        guard !literal.isEmpty else { return }
        if case .literal(let previous) = parts.last {
            parts[parts.count - 1] = .literal(previous + literal)
        } else {
            parts.append(.literal(literal))
        }
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var parts: [Part] = []
        var bindings: [PostgresBinding] = []
        var invalidIdentifiers: [String] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            parts.reserveCapacity(interpolationCount * 2 + 1)
        }

        public mutating func appendLiteral(_ literal: String) {
            SQL.append(literal, to: &parts)
        }

        /// A value, sent as a bind parameter.
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value) {
            parts.append(.binding(bindings.count))
            bindings.append(PostgresBinding(value))
        }

        /// An optional value: NULL when nil.
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value?) {
            parts.append(.binding(bindings.count))
            bindings.append(PostgresBinding(value))
        }

        /// A nested fragment with its own parameters.
        public mutating func appendInterpolation(_ fragment: SQL) {
            let offset = bindings.count
            for part in fragment.parts {
                switch part {
                case .literal(let literal): SQL.append(literal, to: &parts)
                case .binding(let index): parts.append(.binding(index + offset))
                }
            }
            bindings += fragment.bindings
            invalidIdentifiers += fragment.invalidIdentifiers
        }

        /// A table, column or schema name, quoted: any text is safe here except NUL, which
        /// PostgreSQL names cannot hold; a statement holding one is refused before it is sent.
        public mutating func appendInterpolation(ident name: String) {
            if name.unicodeScalars.contains("\0") { invalidIdentifiers.append(name) }
            SQL.append(SQL.quoteIdentifier(name), to: &parts)
        }

        /// Trusted text spliced as is: keywords, generated fragments. Never user input.
        public mutating func appendInterpolation(unescaped text: String) {
            SQL.append(text, to: &parts)
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
