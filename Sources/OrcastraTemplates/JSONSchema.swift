/// The JSON Schema subset a template's `input_schema` may use: `type`, `required`,
/// `properties`, `additionalProperties`, `items`, `enum`, `const`, `description`, and the
/// validation keywords of numbers (`minimum`, `maximum`, `exclusiveMinimum`,
/// `exclusiveMaximum`), strings (`minLength`, `maxLength`, `pattern`, `format`) and arrays
/// (`minItems`, `maxItems`, `uniqueItems`).
///
/// Enough to reject a malformed context at submission (before any step runs) with a message
/// naming the exact field, without pulling in a full JSON Schema implementation (there is none
/// among the packages we may use; see docs/templates.md for what is left out). Every caller that
/// checks a context — the store's task creation (CLI, Swift client, HTTP API), schedules and the
/// orchestrator's schedule firing — calls ``validate(_:at:)``, so the rules live here only.
/// As in JSON Schema, a keyword constrains only values of its kind (`minimum` says nothing about
/// a string) and extra properties are allowed unless `additionalProperties` says otherwise.
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
    /// The value must equal this one; nil when not given (`.some(.null)` is `const: null`).
    public var constValue: JSONValue?
    /// Bounds on numbers, compared exactly (decimal digits, no rounding).
    public var minimum: JSONNumber?
    public var maximum: JSONNumber?
    public var exclusiveMinimum: JSONNumber?
    public var exclusiveMaximum: JSONNumber?
    /// Bounds on a string's length in Unicode code points, as JSON Schema counts.
    public var minLength: Int?
    public var maxLength: Int?
    /// A regular expression a string must contain a match of (anchor it with `^…$` to match
    /// the whole string). Checked to compile when the template is read.
    public var pattern: String?
    public var format: SchemaFormat?
    /// Bounds on an array's element count, and whether its elements must differ.
    public var minItems: Int?
    public var maxItems: Int?
    public var uniqueItems: Bool
    /// What an object's properties not under `properties` must be; nil allows anything.
    public var additionalProperties: AdditionalProperties?
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
        self.uniqueItems = false
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

    /// `additionalProperties: false` (no other property), `true` (the default), or a schema each
    /// other property must match.
    public indirect enum AdditionalProperties: Sendable, Hashable {
        case allowed(Bool)
        case schema(JSONSchema)
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
        case type, description, required, properties, items, minimum, maximum, exclusiveMinimum, exclusiveMaximum
        case minLength, maxLength, pattern, format, minItems, maxItems, uniqueItems, additionalProperties
        case enumValues = "enum"
        case constValue = "const"
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
        // decodeIfPresent would read `const: null` as "no const". (Not a ternary: its `nil` would
        // be JSONValue's nil literal, `.null`.)
        if container.contains(.constValue) {
            constValue = .some(try container.decode(JSONValue.self, forKey: .constValue))
        } else {
            constValue = Optional<JSONValue>.none
        }
        minimum = try container.decodeIfPresent(JSONNumber.self, forKey: .minimum)
        maximum = try container.decodeIfPresent(JSONNumber.self, forKey: .maximum)
        exclusiveMinimum = try container.decodeIfPresent(JSONNumber.self, forKey: .exclusiveMinimum)
        exclusiveMaximum = try container.decodeIfPresent(JSONNumber.self, forKey: .exclusiveMaximum)
        minLength = try container.decodeIfPresent(Int.self, forKey: .minLength)
        maxLength = try container.decodeIfPresent(Int.self, forKey: .maxLength)
        pattern = try container.decodeIfPresent(String.self, forKey: .pattern)
        format = try container.decodeIfPresent(SchemaFormat.self, forKey: .format)
        minItems = try container.decodeIfPresent(Int.self, forKey: .minItems)
        maxItems = try container.decodeIfPresent(Int.self, forKey: .maxItems)
        uniqueItems = try container.decodeIfPresent(Bool.self, forKey: .uniqueItems) ?? false
        if let allowed = try? container.decode(Bool.self, forKey: .additionalProperties) {
            additionalProperties = .allowed(allowed)
        } else {
            additionalProperties = try container.decodeIfPresent(JSONSchema.self, forKey: .additionalProperties).map { .schema($0) }
        }
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
        if let constValue { try container.encode(constValue, forKey: .constValue) }
        try container.encodeIfPresent(minimum, forKey: .minimum)
        try container.encodeIfPresent(maximum, forKey: .maximum)
        try container.encodeIfPresent(exclusiveMinimum, forKey: .exclusiveMinimum)
        try container.encodeIfPresent(exclusiveMaximum, forKey: .exclusiveMaximum)
        try container.encodeIfPresent(minLength, forKey: .minLength)
        try container.encodeIfPresent(maxLength, forKey: .maxLength)
        try container.encodeIfPresent(pattern, forKey: .pattern)
        try container.encodeIfPresent(format, forKey: .format)
        try container.encodeIfPresent(minItems, forKey: .minItems)
        try container.encodeIfPresent(maxItems, forKey: .maxItems)
        if uniqueItems { try container.encode(true, forKey: .uniqueItems) }
        switch additionalProperties {
        case .allowed(let allowed): try container.encode(allowed, forKey: .additionalProperties)
        case .schema(let schema): try container.encode(schema, forKey: .additionalProperties)
        case nil: break
        }
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
