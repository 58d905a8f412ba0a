import Foundation

/// A validated workflow definition: what gets registered, versioned and
/// instantiated into tasks. Build it with ``TemplateParser`` or
/// ``TemplateLoader`` so that names, durations and the DAG are checked.
public struct WorkflowTemplate: Sendable, Hashable, Codable {
    public var namespace: String
    public var name: String
    public var version: SemanticVersion
    public var description: String?
    /// What a task's context must look like; nil accepts any context.
    public var inputSchema: JSONSchema?
    /// In declaration order (the order ties are broken in).
    public var steps: [StepDefinition]
    /// How long finished tasks are kept, by final state; nil (or a state left out) follows the
    /// orchestrators' defaults.
    public var retention: RetentionPolicy?
    /// How long a whole task may run, from its start to its end; nil means no limit. Past it,
    /// running steps are cancelled and the task fails (docs/templates.md, "Task timeout").
    public var timeout: TemplateDuration?
    /// How many tasks with the same key may run at once; nil means no limit.
    public var concurrency: TaskConcurrency?

    public init(
        namespace: String,
        name: String,
        version: SemanticVersion,
        description: String? = nil,
        inputSchema: JSONSchema? = nil,
        steps: [StepDefinition],
        retention: RetentionPolicy? = nil,
        timeout: TemplateDuration? = nil,
        concurrency: TaskConcurrency? = nil
    ) {
        self.namespace = namespace
        self.name = name
        self.version = version
        self.description = description
        self.inputSchema = inputSchema
        self.steps = steps
        self.retention = retention
        self.timeout = timeout
        self.concurrency = concurrency
    }

    /// `namespace/name@version`, the handle people type on the command line.
    public var reference: String { "\(namespace)/\(name)@\(version)" }

    /// The step called `name`, if any.
    public func step(named name: String) -> StepDefinition? {
        steps.first { $0.name == name }
    }

    enum CodingKeys: String, CodingKey {
        case namespace, name, version, description, steps, retention, concurrency
        case inputSchema = "input_schema"
        case timeout = "timeout_ms"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        namespace = try container.decode(String.self, forKey: .namespace)
        name = try container.decode(String.self, forKey: .name)
        version = try container.decode(SemanticVersion.self, forKey: .version)
        description = try container.decodeIfPresent(String.self, forKey: .description)
        inputSchema = try container.decodeIfPresent(JSONSchema.self, forKey: .inputSchema)
        steps = try container.decode([StepDefinition].self, forKey: .steps)
        retention = try container.decodeIfPresent(RetentionPolicy.self, forKey: .retention)
        timeout = try container.decodeIfPresent(TemplateDuration.self, forKey: .timeout)
        concurrency = try container.decodeIfPresent(TaskConcurrency.self, forKey: .concurrency)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(namespace, forKey: .namespace)
        try container.encode(name, forKey: .name)
        try container.encode(version, forKey: .version)
        try container.encodeIfPresent(description, forKey: .description)
        try container.encodeIfPresent(inputSchema, forKey: .inputSchema)
        try container.encode(steps, forKey: .steps)
        if let retention, !retention.isEmpty { try container.encode(retention, forKey: .retention) }
        try container.encodeIfPresent(timeout, forKey: .timeout)
        try container.encodeIfPresent(concurrency, forKey: .concurrency)
    }

    /// The normalized definition stored as jsonb: snake_case keys, durations
    /// as integer `*_ms`, sorted keys so the same template always yields the
    /// same bytes (and therefore the same content hash).
    public func normalizedJSON() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(self)
        return String(decoding: data, as: UTF8.self)
    }

    /// Reads a definition written by ``normalizedJSON()`` (for example, back from the database).
    public init(normalizedJSON text: String) throws {
        self = try JSONDecoder().decode(WorkflowTemplate.self, from: Data(text.utf8))
    }
}
