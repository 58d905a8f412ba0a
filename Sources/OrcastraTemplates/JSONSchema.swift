/// The JSON Schema subset a template's `input_schema` may use: `type`,
/// `required`, `properties`, `enum`, `items` and `description`.
///
/// A deliberately small subset: enough to reject a malformed context at
/// submission (before any step runs) with a message naming the exact field,
/// without pulling in a full JSON Schema implementation. Extra properties
/// are allowed, as in JSON Schema.
public struct JSONSchema: Sendable, Hashable, Codable {
    /// Allowed types; empty means any type. Usually one.
    public var types: [SchemaType]
    public var description: String?
    /// Property names that must be present when the value is an object.
    public var required: [String]
    /// Schemas for named properties of an object; nil when not given.
    public var properties: [String: JSONSchema]?
    /// The value must equal one of these; nil when not given. Numbers compare by exact value
    /// (`1` and `1.0` are the same number, as in JSON Schema).
    public var enumValues: [JSONValue]?
    // An array rather than an optional because a struct cannot contain an
    // optional of itself; at most one element.
    private var itemsStorage: [JSONSchema]

    public init(
        types: [SchemaType] = [],
        description: String? = nil,
        required: [String] = [],
        properties: [String: JSONSchema]? = nil,
        enumValues: [JSONValue]? = nil,
        items: JSONSchema? = nil
    ) {
        self.types = types
        self.description = description
        self.required = required
        self.properties = properties
        self.enumValues = enumValues
        self.itemsStorage = items.map { [$0] } ?? []
    }

    /// The schema every element of an array must match; nil when not given.
    public var items: JSONSchema? {
        get { itemsStorage.first }
        set { itemsStorage = newValue.map { [$0] } ?? [] }
    }

    /// The JSON types a schema can name; `integer` is any whole number.
    public enum SchemaType: String, Sendable, Hashable, Codable, CaseIterable {
        case object, array, string, integer, number, boolean, null

        func accepts(_ value: JSONValue) -> Bool {
            switch (self, value) {
            case (.null, .null), (.boolean, .bool), (.string, .string),
                 (.array, .array), (.object, .object), (.number, .number):
                true
            case (.integer, .number(let number)):
                number.isInteger
            default:
                false
            }
        }
    }

    /// Every way `value` breaks this schema, with paths like
    /// `context.customer.email` or `context.items[2]`; empty when it conforms.
    public func validate(_ value: JSONValue, at path: String = "context") -> [SchemaViolation] {
        var violations: [SchemaViolation] = []
        if !types.isEmpty, !types.contains(where: { $0.accepts(value) }) {
            let expected = types.map { Self.article(for: $0.rawValue) }.joined(separator: " or ")
            violations.append(.init(path: path, message: "must be \(expected), got \(value.typeName)"))
            return violations
        }
        if let enumValues, !enumValues.contains(value) {
            let options = enumValues.map(Self.display).joined(separator: ", ")
            violations.append(.init(path: path, message: "must be one of: \(options); got \(Self.display(value))"))
        }
        switch value {
        case .object(let object):
            for name in required where object[name] == nil {
                violations.append(.init(path: "\(path).\(name)", message: "is required"))
            }
            for (name, schema) in (properties ?? [:]).sorted(by: { $0.key < $1.key }) {
                if let child = object[name] {
                    violations += schema.validate(child, at: "\(path).\(name)")
                }
            }
        case .array(let elements):
            if let items {
                for (index, element) in elements.enumerated() {
                    violations += items.validate(element, at: "\(path)[\(index)]")
                }
            }
        default:
            break
        }
        return violations
    }

    static func article(for type: String) -> String {
        switch type {
        case "null": "null"
        case "integer", "array", "object": "an \(type)"
        default: "a \(type)"
        }
    }

    /// Strings print bare (`a, b`) as in "must be one of: a, b"; other values as JSON.
    static func display(_ value: JSONValue) -> String {
        if case .string(let text) = value { return text }
        return value.jsonText
    }

    enum CodingKeys: String, CodingKey {
        case type, description, required, properties, items
        case enumValues = "enum"
    }

    /// Encoded as real JSON Schema (`type` is a string when there is one
    /// type, a list otherwise), so the stored definition can be handed to
    /// any JSON Schema tool.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let single = try? container.decode(SchemaType.self, forKey: .type) {
            types = [single]
        } else {
            types = try container.decodeIfPresent([SchemaType].self, forKey: .type) ?? []
        }
        description = try container.decodeIfPresent(String.self, forKey: .description)
        required = try container.decodeIfPresent([String].self, forKey: .required) ?? []
        properties = try container.decodeIfPresent([String: JSONSchema].self, forKey: .properties)
        enumValues = try container.decodeIfPresent([JSONValue].self, forKey: .enumValues)
        itemsStorage = try container.decodeIfPresent(JSONSchema.self, forKey: .items).map { [$0] } ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        if types.count == 1 {
            try container.encode(types[0], forKey: .type)
        } else if !types.isEmpty {
            try container.encode(types, forKey: .type)
        }
        try container.encodeIfPresent(description, forKey: .description)
        if !required.isEmpty { try container.encode(required, forKey: .required) }
        try container.encodeIfPresent(properties, forKey: .properties)
        try container.encodeIfPresent(enumValues, forKey: .enumValues)
        try container.encodeIfPresent(items, forKey: .items)
    }
}

/// One way a value breaks an ``JSONSchema``.
public struct SchemaViolation: Sendable, Hashable, CustomStringConvertible {
    /// `context.customer.email`, `context.items[2]`.
    public var path: String
    /// Completes the sentence "<path> …": `is required`, `must be an integer, got string`.
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path) \(message)" }
}
