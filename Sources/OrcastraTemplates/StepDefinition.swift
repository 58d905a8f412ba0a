/// One node of a workflow's DAG, fully resolved: defaults are already applied,
/// so a worker never needs to look at the template's `defaults`.
public struct StepDefinition: Sendable, Hashable, Codable {
    public var name: String
    public var description: String?
    /// Parent steps, in the order written.
    public var dependsOn: [String]
    public var action: StepAction
    /// The worker pool that runs this step (the template's namespace unless overridden).
    public var namespace: String
    public var retry: RetryPolicy
    /// How long one attempt may run before it is failed (and maybe retried).
    public var timeout: TemplateDuration
    /// At most this many attempts of this step, across all tasks of the template version, run at
    /// once (a rate-limited downstream service); nil means no limit. Enforced at claim time.
    public var concurrency: Int?
    /// A PostgreSQL jsonpath predicate over the step's input; when it is not true the step is skipped.
    public var when: String?
    /// Which outcomes of its parents let the step run (docs/templates.md, "Conditions and triggers").
    public var trigger: StepTrigger
    /// A PostgreSQL jsonpath over the step's input yielding a list: one instance of the step per item.
    public var forEach: String?
    /// How many instances of this fan-out may be enqueued or running at once.
    public var maxParallel: Int?
    /// With `forEach`: what each instance's input carries besides its `item` and `index`
    /// (docs/templates.md, "Fan-out"). Empty by default, in `InstanceInputPart` order.
    public var instanceInput: [InstanceInputPart]

    public init(
        name: String,
        description: String? = nil,
        dependsOn: [String] = [],
        action: StepAction,
        namespace: String,
        retry: RetryPolicy = .standard,
        timeout: TemplateDuration = StepDefinition.defaultTimeout,
        concurrency: Int? = nil,
        when: String? = nil,
        trigger: StepTrigger = .allSuccess,
        forEach: String? = nil,
        maxParallel: Int? = nil,
        instanceInput: [InstanceInputPart] = []
    ) {
        self.name = name
        self.description = description
        self.dependsOn = dependsOn
        self.action = action
        self.namespace = namespace
        self.retry = retry
        self.timeout = timeout
        self.concurrency = concurrency
        self.when = when
        self.trigger = trigger
        self.forEach = forEach
        self.maxParallel = maxParallel
        self.instanceInput = InstanceInputPart.allCases.filter(instanceInput.contains)
    }

    /// The built-in timeout for one attempt: 5 minutes.
    public static let defaultTimeout = TemplateDuration.minutes(5)

    enum CodingKeys: String, CodingKey {
        case name, description, namespace, retry, concurrency, when, trigger
        case forEach = "for_each", maxParallel = "max_parallel", instanceInput = "instance_input"
        case dependsOn = "depends_on"
        case handler, command, workflow
        case timeout = "timeout_ms"
    }

    /// The action is flattened into the step object as exactly one of
    /// `"handler": "name"`, `"command": {…}` or `"workflow": "ns/name@version"`, so SQL can test
    /// `definition ? 'handler'` without unwrapping an enum encoding.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        description = try container.decodeIfPresent(String.self, forKey: .description)
        dependsOn = try container.decodeIfPresent([String].self, forKey: .dependsOn) ?? []
        namespace = try container.decode(String.self, forKey: .namespace)
        retry = try container.decode(RetryPolicy.self, forKey: .retry)
        timeout = try container.decode(TemplateDuration.self, forKey: .timeout)
        concurrency = try container.decodeIfPresent(Int.self, forKey: .concurrency)
        when = try container.decodeIfPresent(String.self, forKey: .when)
        trigger = try container.decodeIfPresent(StepTrigger.self, forKey: .trigger) ?? .allSuccess
        forEach = try container.decodeIfPresent(String.self, forKey: .forEach)
        maxParallel = try container.decodeIfPresent(Int.self, forKey: .maxParallel)
        instanceInput = try container.decodeIfPresent([InstanceInputPart].self, forKey: .instanceInput) ?? []
        let handler = try container.decodeIfPresent(String.self, forKey: .handler)
        let command = try container.decodeIfPresent(CommandSpec.self, forKey: .command)
        let workflow = try container.decodeIfPresent(String.self, forKey: .workflow)
        switch (handler, command, workflow) {
        case let (handler?, nil, nil): action = .handler(handler)
        case let (nil, command?, nil): action = .command(command)
        case let (nil, nil, workflow?):
            switch Result(catching: { () throws(WorkflowReferenceError) in try WorkflowReference(parsing: workflow) }) {
            case .success(let reference): action = .workflow(reference)
            case .failure(let error):
                throw DecodingError.dataCorruptedError(forKey: .workflow, in: container, debugDescription: error.message)
            }
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .handler, in: container,
                debugDescription: "step '\(name)' must have exactly one of handler, command or workflow"
            )
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encodeIfPresent(description, forKey: .description)
        try container.encode(dependsOn, forKey: .dependsOn)
        try container.encode(namespace, forKey: .namespace)
        try container.encode(retry, forKey: .retry)
        try container.encode(timeout, forKey: .timeout)
        try container.encodeIfPresent(concurrency, forKey: .concurrency)
        // Written only when set, so definitions (and content hashes) of templates without them stay as they were.
        try container.encodeIfPresent(when, forKey: .when)
        if trigger != .allSuccess { try container.encode(trigger, forKey: .trigger) }
        try container.encodeIfPresent(forEach, forKey: .forEach)
        try container.encodeIfPresent(maxParallel, forKey: .maxParallel)
        // claim_steps reads it from the stored definition (functions/claim.sql).
        if !instanceInput.isEmpty { try container.encode(instanceInput, forKey: .instanceInput) }
        switch action {
        case .handler(let handler): try container.encode(handler, forKey: .handler)
        case .command(let command): try container.encode(command, forKey: .command)
        case .workflow(let reference): try container.encode(reference.description, forKey: .workflow)
        }
    }
}

/// What a fan-out instance's input may carry besides its item and index (`instance_input:`).
public enum InstanceInputPart: String, Sendable, Hashable, Codable, CaseIterable {
    /// The task's context.
    case context
    /// The fan-out step's parents' results (what the group itself would receive as `parents`).
    case parents
}

/// Which outcomes of a step's parents let it run (Airflow's trigger rules, a subset).
public enum StepTrigger: String, Sendable, Hashable, Codable, CaseIterable {
    /// Every parent complete (or resolved). A skipped parent skips the step. The default.
    case allSuccess = "all_success"
    /// Every parent finished, whatever its outcome: complete, resolved, skipped or failed (error).
    case allDone = "all_done"
    /// As soon as one parent completes; skipped when every parent was skipped.
    case oneSuccess = "one_success"
    /// Every parent complete or skipped (none failed); runs even if all were skipped.
    case noneFailed = "none_failed"
}

/// What a step does when it runs.
public enum StepAction: Sendable, Hashable {
    /// A Swift handler registered under this name in a worker.
    case handler(String)
    /// A process run by the stock worker (see docs/templates.md for the stdin/stdout convention).
    case command(CommandSpec)
    /// A sub-workflow: a child task of another template, made by the database when the step is
    /// ready (no worker runs it); the step completes or fails with that task (docs/templates.md).
    case workflow(WorkflowReference)
}

/// A process to run: no shell is involved unless `argv` asks for one
/// (`["sh", "-c", "…"]`), so arguments never need quoting.
public struct CommandSpec: Sendable, Hashable, Codable {
    /// Program and arguments; `argv[0]` is looked up on `PATH`.
    public var argv: [String]
    /// Added to (and overriding) the worker's environment.
    public var env: [String: String]
    /// Where the process starts; the worker's current directory when nil.
    public var workingDirectory: String?

    public init(argv: [String], env: [String: String] = [:], workingDirectory: String? = nil) {
        self.argv = argv
        self.env = env
        self.workingDirectory = workingDirectory
    }

    enum CodingKeys: String, CodingKey {
        case argv, env
        case workingDirectory = "working_directory"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        argv = try container.decode([String].self, forKey: .argv)
        env = try container.decodeIfPresent([String: String].self, forKey: .env) ?? [:]
        workingDirectory = try container.decodeIfPresent(String.self, forKey: .workingDirectory)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(argv, forKey: .argv)
        try container.encode(env, forKey: .env)
        try container.encodeIfPresent(workingDirectory, forKey: .workingDirectory)
    }
}
