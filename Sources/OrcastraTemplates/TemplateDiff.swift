/// What differs between two template definitions (`orcastra template diff`), step by step.
///
/// Computed on the normalized definitions — every default resolved, as the registry stores them
/// and workers run them — not on the YAML text: reformatting, comments or a default written out
/// change nothing, and a changed default shows in every step it reaches. Fields are compared as
/// JSON values, objects key by key (so `retry.max_attempts`, `command.env.KEY`,
/// `input_schema.properties.id.type` each show on their own); lists (`depends_on`, `argv`,
/// `required`) as a whole.
public struct TemplateDiff: Sendable, Equatable, Encodable {
    /// One field that differs: its path in the normalized definition, and its value on each side
    /// (nil where the field is absent on that side).
    public struct Change: Sendable, Equatable, Encodable {
        public var field: String
        public var from: JSONValue?
        public var to: JSONValue?

        public init(field: String, from: JSONValue?, to: JSONValue?) {
            self.field = field
            self.from = from
            self.to = to
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(field, forKey: .field)
            try container.encode(from, forKey: .from)
            try container.encode(to, forKey: .to)
        }

        enum CodingKeys: String, CodingKey { case field, from, to }
    }

    /// A step both definitions have, with the fields that differ.
    public struct StepChange: Sendable, Equatable, Encodable {
        public var step: String
        public var changes: [Change]
    }

    /// `namespace/name@version` of each side.
    public var from: String
    public var to: String
    /// Outside the steps: `description`, `input_schema…`, `namespace` and `name` when two templates
    /// are compared, and `step_order` when the steps both have are declared in another order
    /// (declaration order breaks ties in execution order). The version is left out: it always differs.
    public var changes: [Change]
    /// Steps only `to` has, in its order.
    public var stepsAdded: [String]
    /// Steps only `from` has, in its order.
    public var stepsRemoved: [String]
    /// Steps both have that differ, in `to`'s order.
    public var stepsChanged: [StepChange]

    public var isIdentical: Bool {
        changes.isEmpty && stepsAdded.isEmpty && stepsRemoved.isEmpty && stepsChanged.isEmpty
    }

    public init(from old: WorkflowTemplate, to new: WorkflowTemplate) throws {
        from = old.reference
        to = new.reference
        let before = try Self.normalized(old)
        let after = try Self.normalized(new)
        changes = []
        Self.compare(.object(before.fields), .object(after.fields), path: "", into: &changes)

        let oldNames = Set(before.steps.map(\.name))
        let newNames = Set(after.steps.map(\.name))
        stepsAdded = after.steps.map(\.name).filter { !oldNames.contains($0) }
        stepsRemoved = before.steps.map(\.name).filter { !newNames.contains($0) }
        let oldSteps = Dictionary(before.steps.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        stepsChanged = after.steps.compactMap { step in
            guard let previous = oldSteps[step.name] else { return nil }
            var changes: [Change] = []
            Self.compare(previous, step.value, path: "", into: &changes)
            return changes.isEmpty ? nil : StepChange(step: step.name, changes: changes)
        }
        let oldOrder = before.steps.map(\.name).filter(newNames.contains)
        let newOrder = after.steps.map(\.name).filter(oldNames.contains)
        if oldOrder != newOrder {
            changes.append(Change(field: "step_order", from: .array(oldOrder.map(JSONValue.string)),
                                  to: .array(newOrder.map(JSONValue.string))))
        }
    }

    /// The definition as stored, split into its top-level fields (without `version` and `steps`)
    /// and its steps by name (without `name`).
    private static func normalized(_ template: WorkflowTemplate) throws -> (fields: [String: JSONValue], steps: [(name: String, value: JSONValue)]) {
        guard case .object(var fields) = try JSONValue(parsing: try template.normalizedJSON()) else { return ([:], []) }
        fields["version"] = nil
        let steps: [(name: String, value: JSONValue)]
        if case .array(let list)? = fields.removeValue(forKey: "steps") {
            steps = list.compactMap { step in
                guard case .object(var object) = step, case .string(let name)? = object.removeValue(forKey: "name") else { return nil }
                return (name, .object(object))
            }
        } else {
            steps = []
        }
        return (fields, steps)
    }

    /// Objects key by key (sorted), anything else as one value.
    private static func compare(_ old: JSONValue?, _ new: JSONValue?, path: String, into changes: inout [Change]) {
        if old == new { return }
        if case .object(let before)? = old, case .object(let after)? = new {
            for key in Set(before.keys).union(after.keys).sorted() {
                compare(before[key], after[key], path: path.isEmpty ? key : path + "." + key, into: &changes)
            }
            return
        }
        changes.append(Change(field: path, from: old, to: new))
    }

    enum CodingKeys: String, CodingKey {
        case from, to, identical, changes
        case stepsAdded = "steps_added"
        case stepsRemoved = "steps_removed"
        case stepsChanged = "steps_changed"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(from, forKey: .from)
        try container.encode(to, forKey: .to)
        try container.encode(isIdentical, forKey: .identical)
        try container.encode(changes, forKey: .changes)
        try container.encode(stepsAdded, forKey: .stepsAdded)
        try container.encode(stepsRemoved, forKey: .stepsRemoved)
        try container.encode(stepsChanged, forKey: .stepsChanged)
    }
}
