import Yams

/// Walks the YAML tree of one template and builds the resolved model,
/// reporting into a ``ParseSession`` instead of throwing.
struct TemplateReader {
    let session: ParseSession

    /// A step as written, before defaults are applied and dependencies checked.
    struct RawStep {
        var index: Int
        var node: Node
        var name: String?
        var nameNode: Node?
        var description: String?
        var dependsOn: [(name: String, node: Node)] = []
        var action: StepAction?
        var namespace: String?
        var retry = RetryOverrides()
        var timeout: TemplateDuration?
        var concurrency: Int?
        var when: (text: String, node: Node)?
        var trigger: StepTrigger?
        var forEach: (text: String, node: Node)?
        var maxParallel: (value: Int, node: Node)?
        var instanceInput: [InstanceInputPart] = []
        /// Where `workflow:`'s value is, for errors about what it refers to.
        var workflowNode: Node?
    }

    /// Retry fields given at one level (`defaults.retry` or a step's `retry`).
    struct RetryOverrides {
        var maxAttempts: Int?
        var backoff: Backoff?
        var initialDelay: TemplateDuration?
        var maxDelay: TemplateDuration?
        var jitter: Bool?
        var node: Node?

        func applied(to base: RetryPolicy) -> RetryPolicy {
            RetryPolicy(
                maxAttempts: maxAttempts ?? base.maxAttempts,
                backoff: backoff ?? base.backoff,
                initialDelay: initialDelay ?? base.initialDelay,
                maxDelay: maxDelay ?? base.maxDelay,
                jitter: jitter ?? base.jitter
            )
        }

        var setsDelays: Bool { initialDelay != nil || maxDelay != nil }
    }

    func readTemplate(_ root: Node) -> WorkflowTemplate? {
        guard let mapping = root.mapping else {
            session.report(root, path: "", "a template must be a mapping with namespace, name, version and steps, got \(ParseSession.describe(root))")
            return nil
        }
        let entries = session.entries(of: mapping, allowed: TemplateParser.topLevelKeys, path: "", owner: "the template")
        session.requireKeys(
            ["namespace", "name", "version", "steps"], in: entries, mappingNode: root, path: "", owner: "the template",
            hints: [
                "namespace": "add for example namespace: examples (the worker pool that runs its steps)",
                "name": "add for example name: nightly_etl",
                "version": "add for example version: 1.0.0",
                "steps": "add a list of steps, each with a name and a handler or command",
            ]
        )

        let namespace = entries["namespace"].flatMap { session.name($0.value, path: "namespace", label: "namespace") }
        let name = entries["name"].flatMap { session.name($0.value, path: "name", label: "template name") }
        let version = entries["version"].flatMap { readVersion($0.value) }
        let description = entries["description"].flatMap { session.text($0.value, path: "description", label: "description") }
        let schema = entries["input_schema"].flatMap {
            SchemaReader(session: session).read($0.value, path: "input_schema", depth: 0)
        }

        let timeout = entries["timeout"].flatMap { readTimeout($0.value, path: "timeout") }
        let concurrency = entries["concurrency"].flatMap { readConcurrency($0.value) }

        var defaultRetry = RetryPolicy.standard
        var defaultTimeout = StepDefinition.defaultTimeout
        if let defaults = entries["defaults"] {
            readDefaults(defaults.value, retry: &defaultRetry, timeout: &defaultTimeout)
        }

        let retention = entries["retention"].flatMap { readRetention($0.value) }

        var rawSteps: [RawStep] = []
        if let stepsEntry = entries["steps"],
           let sequence = session.sequence(stepsEntry.value, path: "steps", label: "steps",
                                           example: "steps: [{name: extract, handler: etl.extract}]") {
            if sequence.isEmpty {
                session.report(stepsEntry.value, path: "steps", "steps is empty; add at least one step with a name and a handler or command")
            }
            for (index, node) in sequence.enumerated() {
                if let step = readStep(node, index: index) { rawSteps.append(step) }
            }
        }
        checkGraph(rawSteps)
        if let namespace, let name {
            for raw in rawSteps {
                guard case .workflow(let reference)? = raw.action, reference.namespace == namespace, reference.name == name else { continue }
                let owner = raw.name.map { "step '\($0)'" } ?? "step \(raw.index + 1)"
                session.report(raw.workflowNode, path: "steps[\(raw.index)].workflow",
                               "\(owner) runs workflow \(reference), this template itself: a task would start itself again without end; call another template, or loop with for_each")
            }
        }

        var steps: [StepDefinition] = []
        for raw in rawSteps {
            guard let stepName = raw.name, let action = raw.action else { continue }
            let retry = raw.retry.applied(to: defaultRetry)
            if raw.retry.setsDelays, retry.initialDelay > retry.maxDelay {
                session.report(raw.retry.node, path: "steps[\(raw.index)].retry",
                               "initial_delay (\(retry.initialDelay)) is longer than max_delay (\(retry.maxDelay)); raise max_delay or lower initial_delay")
            }
            steps.append(StepDefinition(
                name: stepName,
                description: raw.description,
                dependsOn: raw.dependsOn.map(\.name),
                action: action,
                namespace: raw.namespace ?? namespace ?? "",
                retry: retry,
                timeout: raw.timeout ?? defaultTimeout,
                concurrency: raw.concurrency,
                when: raw.when?.text,
                trigger: raw.trigger ?? .allSuccess,
                forEach: raw.forEach?.text,
                maxParallel: raw.maxParallel?.value,
                instanceInput: raw.instanceInput
            ))
        }

        guard let namespace, let name, let version, !steps.isEmpty, steps.count == rawSteps.count else { return nil }
        return WorkflowTemplate(
            namespace: namespace, name: name, version: version,
            description: description, inputSchema: schema, steps: steps,
            retention: retention,
            timeout: timeout, concurrency: concurrency
        )
    }

    /// `concurrency: {key: "$.context.customer_id", limit: 1}`.
    func readConcurrency(_ node: Node) -> TaskConcurrency? {
        guard let mapping = session.mapping(node, path: "concurrency", label: "concurrency",
                                           example: "concurrency: {key: \"$.context.customer_id\", limit: 1}") else { return nil }
        let entries = session.entries(of: mapping, allowed: TemplateParser.concurrencyKeys, path: "concurrency", owner: "concurrency")
        session.requireKeys(["key", "limit"], in: entries, mappingNode: node, path: "concurrency", owner: "concurrency",
                            hints: ["key": "add key: \"$.context.customer_id\" (a jsonpath into the task's context)",
                                    "limit": "add limit: 1 (how many tasks with the same key may run at once)"])
        var key: String?
        if let entry = entries["key"], let text = session.text(entry.value, path: "concurrency.key", label: "key") {
            if let problem = JSONPathSyntax.problem(inKey: text) {
                let quoted = entry.value.scalar.map { $0.style == .singleQuoted || $0.style == .doubleQuoted } ?? false
                let position = entry.value.mark.map { SourcePosition(line: $0.line, column: $0.column + problem.offset + (quoted ? 1 : 0)) }
                session.report(at: position, path: "concurrency.key",
                               "key '\(text)' is not a jsonpath Orcastra accepts: \(problem.message)")
            } else {
                key = text
            }
        }
        var limit: Int?
        if let entry = entries["limit"], let value = session.integer(entry.value, path: "concurrency.limit", label: "limit") {
            if value < 1 {
                session.report(entry.value, path: "concurrency.limit", "limit must be at least 1 (tasks with the same key running at once), got \(value)")
            } else {
                limit = value
            }
        }
        guard let key, let limit else { return nil }
        return TaskConcurrency(key: key, limit: limit)
    }

    func readVersion(_ node: Node) -> SemanticVersion? {
        guard let text = session.text(node, path: "version", label: "version") else { return nil }
        do {
            return try SemanticVersion(parsing: text)
        } catch {
            session.report(node, path: "version", "version \(error.message)")
            return nil
        }
    }

    /// `retention: {complete: 7d, error: 30d, cancelled: 7d, resolved_manually: forever}`.
    func readRetention(_ node: Node) -> RetentionPolicy? {
        guard let mapping = session.mapping(node, path: "retention", label: "retention",
                                           example: "retention: {complete: 7d, error: 30d}") else { return nil }
        let entries = session.entries(of: mapping, allowed: RetentionPolicy.states, path: "retention", owner: "retention")
        var policy = RetentionPolicy()
        for state in RetentionPolicy.states {
            guard let entry = entries[state] else { continue }
            let path = ParseSession.path("retention", state)
            guard let text = session.text(entry.value, path: path, label: state) else { continue }
            do {
                policy[state] = try RetentionPeriod(parsing: text)
            } catch {
                session.report(entry.value, path: path, "\(state) \(error.message)")
            }
        }
        return policy
    }

    func readDefaults(_ node: Node, retry: inout RetryPolicy, timeout: inout TemplateDuration) {
        guard let mapping = session.mapping(node, path: "defaults", label: "defaults",
                                           example: "defaults: {timeout: 5m, retry: {max_attempts: 3}}") else { return }
        let entries = session.entries(of: mapping, allowed: TemplateParser.defaultsKeys, path: "defaults", owner: "defaults")
        if let entry = entries["retry"] {
            let overrides = readRetry(entry.value, path: "defaults.retry")
            retry = overrides.applied(to: retry)
            if overrides.setsDelays, retry.initialDelay > retry.maxDelay {
                session.report(entry.value, path: "defaults.retry",
                               "initial_delay (\(retry.initialDelay)) is longer than max_delay (\(retry.maxDelay)); raise max_delay or lower initial_delay")
            }
        }
        if let entry = entries["timeout"], let value = readTimeout(entry.value, path: "defaults.timeout") {
            timeout = value
        }
    }

    func readTimeout(_ node: Node, path: String) -> TemplateDuration? {
        guard let value = session.duration(node, path: path, label: "timeout") else { return nil }
        guard value.milliseconds > 0 else {
            session.report(node, path: path, "timeout must be longer than 0s; give each attempt time to run, e.g. 30s")
            return nil
        }
        return value
    }

    func readRetry(_ node: Node, path: String) -> RetryOverrides {
        var result = RetryOverrides(node: node)
        guard let mapping = session.mapping(node, path: path, label: "retry",
                                           example: "retry: {max_attempts: 5, backoff: exponential}") else { return result }
        let entries = session.entries(of: mapping, allowed: TemplateParser.retryKeys, path: path, owner: "retry")
        if let entry = entries["max_attempts"] {
            let keyPath = ParseSession.path(path, "max_attempts")
            if let value = session.integer(entry.value, path: keyPath, label: "max_attempts") {
                if value < 1 {
                    session.report(entry.value, path: keyPath, "max_attempts must be at least 1 (1 means no retries), got \(value)")
                } else {
                    result.maxAttempts = value
                }
            }
        }
        if let entry = entries["backoff"] {
            let keyPath = ParseSession.path(path, "backoff")
            if let text = session.text(entry.value, path: keyPath, label: "backoff") {
                if let backoff = Backoff(rawValue: text) {
                    result.backoff = backoff
                } else {
                    let names = Backoff.allCases.map(\.rawValue)
                    session.report(entry.value, path: keyPath,
                                   "unknown backoff '\(text)'\(EditDistance.didYouMean(text, among: names)); use one of: \(names.joined(separator: ", "))")
                }
            }
        }
        if let entry = entries["initial_delay"] {
            result.initialDelay = session.duration(entry.value, path: ParseSession.path(path, "initial_delay"), label: "initial_delay")
        }
        if let entry = entries["max_delay"] {
            result.maxDelay = session.duration(entry.value, path: ParseSession.path(path, "max_delay"), label: "max_delay")
        }
        if let entry = entries["jitter"] {
            result.jitter = session.boolean(entry.value, path: ParseSession.path(path, "jitter"), label: "jitter")
        }
        return result
    }

    func readStep(_ node: Node, index: Int) -> RawStep? {
        let path = "steps[\(index)]"
        guard let mapping = session.mapping(node, path: path, label: "each step",
                                           example: "- name: extract\n    handler: etl.extract") else { return nil }
        var step = RawStep(index: index, node: node)
        let nameEntry = mapping["name"]
        let owner = nameEntry?.scalar.map { "step '\($0.string)'" } ?? "step \(index + 1)"
        let entries = session.entries(of: mapping, allowed: TemplateParser.stepKeys, path: path, owner: owner)
        session.requireKeys(["name"], in: entries, mappingNode: node, path: path, owner: owner,
                            hints: ["name": "add name: <step_name> (other steps refer to it in depends_on)"])

        if let entry = entries["name"] {
            step.name = session.name(entry.value, path: ParseSession.path(path, "name"), label: "step name")
            step.nameNode = entry.value
        }
        if let entry = entries["description"] {
            step.description = session.text(entry.value, path: ParseSession.path(path, "description"), label: "description")
        }
        if let entry = entries["namespace"] {
            step.namespace = session.name(entry.value, path: ParseSession.path(path, "namespace"), label: "namespace")
        }
        if let entry = entries["depends_on"] {
            let keyPath = ParseSession.path(path, "depends_on")
            if !ParseSession.isNull(entry.value),
               let list = session.sequence(entry.value, path: keyPath, label: "depends_on",
                                           example: "depends_on: [extract, validate]") {
                for (i, element) in list.enumerated() {
                    if let parent = session.text(element, path: ParseSession.path(keyPath, index: i), label: "a depends_on entry") {
                        step.dependsOn.append((parent, element))
                    }
                }
            }
        }
        // In the order written: the error names them so, at the second one.
        let actions = ["handler", "command", "workflow"].compactMap { key in entries[key].map { (key, $0.key) } }
            .sorted { ($0.1.mark?.line ?? 0, $0.1.mark?.column ?? 0) < ($1.1.mark?.line ?? 0, $1.1.mark?.column ?? 0) }
        if actions.count > 1 {
            session.report(actions[1].1, path: path,
                           "\(owner) has both \(actions[0].0) and \(actions[1].0); keep exactly one of them")
        } else if let handler = entries["handler"] {
            if let name = session.name(handler.value, path: ParseSession.path(path, "handler"), label: "handler name", allowDots: true) {
                step.action = .handler(name)
            }
        } else if let command = entries["command"] {
            if let spec = readCommand(command.value, path: ParseSession.path(path, "command")) {
                step.action = .command(spec)
            }
        } else if let workflow = entries["workflow"] {
            let keyPath = ParseSession.path(path, "workflow")
            if let text = session.text(workflow.value, path: keyPath, label: "workflow") {
                switch Result(catching: { () throws(WorkflowReferenceError) in try WorkflowReference(parsing: text) }) {
                case .success(let reference):
                    step.action = .workflow(reference)
                    step.workflowNode = workflow.value
                    if let forEach = entries["for_each"] {
                        session.report(forEach.key, path: ParseSession.path(path, "for_each"),
                                       "\(owner) has both workflow and for_each; a sub-workflow step makes one child task: fan out over a handler step, or move the for_each into the child template")
                    }
                case .failure(let error):
                    session.report(workflow.value, path: keyPath, "workflow of \(owner): \(error.message)")
                }
            }
        } else {
            session.report(node, path: path, "\(owner) needs either handler (a Swift handler name) or command (a program to run) or workflow (a template to run as a child task); add one of them")
        }
        if let entry = entries["retry"] {
            step.retry = readRetry(entry.value, path: ParseSession.path(path, "retry"))
        }
        if let entry = entries["timeout"] {
            step.timeout = readTimeout(entry.value, path: ParseSession.path(path, "timeout"))
        }
        if let entry = entries["concurrency"] {
            let keyPath = ParseSession.path(path, "concurrency")
            if entry.value.mapping != nil {
                session.report(entry.value, path: keyPath,
                               "a step's concurrency is a number (how many of it run at once across all tasks), like concurrency: 3; a key and limit belong to the template's top-level concurrency")
            } else if let value = session.integer(entry.value, path: keyPath, label: "concurrency") {
                if value < 1 {
                    session.report(entry.value, path: keyPath, "concurrency must be at least 1 (attempts of this step running at once), got \(value)")
                } else {
                    step.concurrency = value
                }
            }
        }
        if let entry = entries["when"] {
            let keyPath = ParseSession.path(path, "when")
            if let text = session.text(entry.value, path: keyPath, label: "when") {
                step.when = (text, entry.value)
            }
        }
        if let entry = entries["for_each"] {
            if let text = session.text(entry.value, path: ParseSession.path(path, "for_each"), label: "for_each") {
                step.forEach = (text, entry.value)
            }
        }
        if let entry = entries["max_parallel"] {
            let keyPath = ParseSession.path(path, "max_parallel")
            if let value = session.integer(entry.value, path: keyPath, label: "max_parallel") {
                if value < 1 {
                    session.report(entry.value, path: keyPath, "max_parallel must be at least 1 (how many instances of the fan-out run at once), got \(value)")
                } else if entries["for_each"] == nil {
                    session.report(entry.key, path: keyPath, "\(owner) has max_parallel but no for_each; max_parallel caps the instances of a fan-out: add for_each or remove max_parallel")
                } else {
                    step.maxParallel = (value, entry.value)
                }
            }
        }
        if let entry = entries["instance_input"] {
            readInstanceInput(entry, hasForEach: entries["for_each"] != nil, owner: owner,
                              path: ParseSession.path(path, "instance_input"), into: &step)
        }
        if let entry = entries["trigger"] {
            let keyPath = ParseSession.path(path, "trigger")
            if let text = session.text(entry.value, path: keyPath, label: "trigger") {
                if let trigger = StepTrigger(rawValue: text) {
                    step.trigger = trigger
                } else {
                    let names = StepTrigger.allCases.map(\.rawValue)
                    session.report(entry.value, path: keyPath,
                                   "unknown trigger '\(text)'\(EditDistance.didYouMean(text, among: names)); use one of: \(names.joined(separator: ", "))")
                }
            }
        }
        return step
    }

    func readCommand(_ node: Node, path: String) -> CommandSpec? {
        if node.scalar != nil, !ParseSession.isNull(node) {
            session.report(node, path: path, "command must be a list of arguments, not a single string (it is never split into words); write command: [\"sh\", \"-c\", \"...\"] or a mapping with argv")
            return nil
        }
        if let sequence = node.sequence {
            return readArgv(sequence, node: node, path: path).map { CommandSpec(argv: $0) }
        }
        guard let mapping = session.mapping(node, path: path, label: "command",
                                           example: "command: {argv: [python3, -c, ...], env: {KEY: value}}") else { return nil }
        let entries = session.entries(of: mapping, allowed: TemplateParser.commandKeys, path: path, owner: "command")
        session.requireKeys(["argv"], in: entries, mappingNode: node, path: path, owner: "command",
                            hints: ["argv": "add argv: [program, arg1, ...]"])
        var argv: [String]?
        if let entry = entries["argv"] {
            let argvPath = ParseSession.path(path, "argv")
            if let sequence = session.sequence(entry.value, path: argvPath, label: "argv", example: "argv: [python3, script.py]") {
                argv = readArgv(sequence, node: entry.value, path: argvPath)
            }
        }
        var env: [String: String] = [:]
        var envOK = true
        if let entry = entries["env"] {
            let envPath = ParseSession.path(path, "env")
            if let envMapping = session.mapping(entry.value, path: envPath, label: "env", example: "env: {LOG_LEVEL: debug}") {
                for (key, value) in envMapping {
                    guard let name = key.scalar?.string, Self.isEnvironmentName(name) else {
                        let shown = key.scalar.map { "'\($0.string)'" } ?? ParseSession.describe(key)
                        session.report(key, path: envPath, "environment variable name \(shown) is invalid; use letters, digits and '_', not starting with a digit")
                        envOK = false
                        continue
                    }
                    if let text = session.text(value, path: ParseSession.path(envPath, name), label: "environment variable \(name)") {
                        env[name] = text
                    } else {
                        envOK = false
                    }
                }
            } else {
                envOK = false
            }
        }
        var workingDirectory: String?
        if let entry = entries["working_directory"] {
            workingDirectory = session.text(entry.value, path: ParseSession.path(path, "working_directory"), label: "working_directory")
            if workingDirectory == nil { envOK = false }
        }
        guard let argv, envOK else { return nil }
        return CommandSpec(argv: argv, env: env, workingDirectory: workingDirectory)
    }

    func readArgv(_ sequence: Node.Sequence, node: Node, path: String) -> [String]? {
        if sequence.isEmpty {
            session.report(node, path: path, "command has no arguments; give at least the program to run, like [python3, -c, \"...\"]")
            return nil
        }
        var argv: [String] = []
        for (i, element) in sequence.enumerated() {
            guard let word = session.text(element, path: ParseSession.path(path, index: i), label: "a command argument") else { return nil }
            argv.append(word)
        }
        return argv
    }

    static func isEnvironmentName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_"
        }
    }

    /// A step's `when:`: PostgreSQL jsonpath syntax (checked offline, JSONPathSyntax), and paths
    /// from `$` that read only `context` or `parents.<a parent in depends_on>`. Located at the
    /// character in the file when the expression is written on one line.
    func checkExpression(_ step: RawStep, _ expression: (text: String, node: Node), key: String) {
        let (text, node) = expression
        let path = "steps[\(step.index)].\(key)"
        let owner = step.name.map { "step '\($0)'" } ?? "step \(step.index + 1)"
        func position(_ offset: Int) -> SourcePosition? {
            guard let mark = node.mark else { return nil }
            guard let scalar = node.scalar, !text.contains("\n") else { return SourcePosition(line: mark.line, column: mark.column) }
            let quoted = scalar.style == .singleQuoted || scalar.style == .doubleQuoted
            return SourcePosition(line: mark.line, column: mark.column + offset + (quoted ? 1 : 0))
        }
        switch JSONPathSyntax.check(text) {
        case .failure(let problem):
            session.report(at: position(problem.offset), path: path,
                           "\(key) of \(owner) is not a valid jsonpath: \(problem.message) (at character \(problem.offset + 1) of \"\(text)\")")
        case .success(let syntax):
            let parents = step.dependsOn.map(\.name)
            for reference in syntax.references {
                guard let first = reference.keys.first else { continue }
                switch first {
                case "context":
                    continue
                case "parents":
                    guard reference.keys.count > 1 else { continue }
                    let parent = reference.keys[1]
                    if !parents.contains(parent) {
                        let hint = EditDistance.didYouMean(parent, among: parents)
                        let fix = parents.isEmpty
                            ? "; \(owner) has no depends_on, so its input has no parents: add '\(parent)' to depends_on or read $.context"
                            : (hint.isEmpty ? "; it can read only its parents: \(parents.joined(separator: ", "))" : hint)
                        session.report(at: position(reference.offset), path: path,
                                       "\(key) of \(owner) reads $.parents.\(parent), but '\(parent)' is not in its depends_on\(fix)")
                    }
                default:
                    session.report(at: position(reference.offset), path: path,
                                   "\(key) of \(owner) reads $.\(first), but a step's input has only context and parents\(EditDistance.didYouMean(first, among: ["context", "parents"])); write $.context.… or $.parents.<parent>.…")
                }
            }
        }
    }

    /// Duplicate names, unknown and repeated dependencies, self-dependencies and cycles.
    func checkGraph(_ steps: [RawStep]) {
        var firstByName: [String: RawStep] = [:]
        for step in steps {
            guard let name = step.name else { continue }
            if let first = firstByName[name] {
                let line = first.nameNode?.mark?.line ?? 0
                session.report(step.nameNode, path: "steps[\(step.index)].name",
                               "step name '\(name)' is already used by steps[\(first.index)] on line \(line); step names must be unique, so rename one of them")
            } else {
                firstByName[name] = step
            }
        }
        let names = steps.compactMap(\.name)
        var uniqueNames: [String] = []
        var seenNames = Set<String>()
        for name in names where seenNames.insert(name).inserted { uniqueNames.append(name) }

        for step in steps {
            guard let name = step.name else { continue }
            var listed = Set<String>()
            for (i, dependency) in step.dependsOn.enumerated() {
                let path = "steps[\(step.index)].depends_on[\(i)]"
                if dependency.name == name {
                    session.report(dependency.node, path: path, "step '\(name)' depends on itself; remove '\(name)' from its depends_on")
                } else if !seenNames.contains(dependency.name) {
                    let hint = EditDistance.didYouMean(dependency.name, among: uniqueNames)
                    let fix = hint.isEmpty ? "; depends_on must name steps of this template" : hint
                    session.report(dependency.node, path: path, "step '\(name)' depends on unknown step '\(dependency.name)'\(fix)")
                } else if !listed.insert(dependency.name).inserted {
                    session.report(dependency.node, path: path, "step '\(name)' lists '\(dependency.name)' twice in depends_on; remove the repeat")
                }
            }
        }

        for step in steps {
            if let when = step.when { checkExpression(step, when, key: "when") }
            if let forEach = step.forEach { checkExpression(step, forEach, key: "for_each") }
        }

        // Only steps that kept their name take part; a duplicate name's
        // edges are attributed to the first step with that name.
        let named = steps.filter { $0.name != nil && firstByName[$0.name!]?.index == $0.index }
        let index = DAGIndex(names: named.map { $0.name! }, dependsOn: named.map { $0.dependsOn.map(\.name) })
        for cycle in index.cycles() {
            let members = cycle.map { named[$0] }
            let picture = (members + [members[0]]).map { $0.name! }.joined(separator: " → ")
            let head = members[0]
            let closing = members[members.count - 1].name!
            let entry = head.dependsOn.firstIndex { $0.name == closing }
            let node = entry.map { head.dependsOn[$0].node } ?? head.nameNode
            let path = entry.map { "steps[\(head.index)].depends_on[\($0)]" } ?? "steps[\(head.index)]"
            session.report(node, path: path,
                           "steps form a dependency cycle: \(picture) (each runs after the one before it); remove one of these depends_on entries")
        }
    }
}
