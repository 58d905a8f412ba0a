import Foundation
import Logging
import OpenAPIRuntime
import OrcastraAPITypes
import OrcastraClient
import OrcastraMigrations
import OrcastraPostgres
import OrcastraStateMachines
import OrcastraStore
import OrcastraTemplates
import ServiceLifecycle

/// The API's operations (docs/openapi.yaml), each a call into OrcastraClient or OrcastraStore.
///
/// Refusals are thrown (a `Problem`, or a library error `Problem.from` maps) and rendered as
/// problem+json by ``APIMiddleware``; only successes are returned as the generated outputs.
struct APIHandler: APIProtocol {
    let client: OrcastraClient
    let hub: TaskEventHub
    let templates: TemplateLookupCache
    /// Submissions arriving together share one commit.
    let submissions: SubmissionBatcher
    let logger: Logger

    var registry: TemplateRegistry { TemplateRegistry(pool: client.pool) }

    // MARK: - Health

    func getHealth(_ input: Operations.GetHealth.Input) async throws -> Operations.GetHealth.Output {
        .ok(.init(body: .json(.init(status: .up))))
    }

    func getReadiness(_ input: Operations.GetReadiness.Input) async throws -> Operations.GetReadiness.Output {
        if let reason = await notReadyReason() {
            return .serviceUnavailable(.init(body: .json(.init(status: .unavailable, reason: reason))))
        }
        return .ok(.init(body: .json(.init(status: .ready))))
    }

    /// Why the database cannot serve this binary, or nil when it can. A pooled connection that
    /// broke while the database was away fails once and is replaced, so a broken connection is
    /// tried again before the answer is "unreachable".
    private func notReadyReason() async -> String? {
        let migrator: Migrator
        do {
            migrator = try Migrator.bundled()
        } catch {
            return "this server cannot find its migrations to compare with the database: \(error)"
        }
        for attempt in 1...2 {
            do {
                let (numbered, repeatable) = try await client.pool.withConnection { connection in
                    (try await migrator.status(on: connection), try await migrator.repeatableStatus(on: connection))
                }
                let pending = numbered.filter { $0.state != .applied }.map(\.file)
                    + repeatable.filter { $0.state != .applied }.map(\.file)
                return pending.isEmpty ? nil
                    : "the database is not migrated to what this server expects (\(pending.joined(separator: ", ")) not applied): run `orcastra migrate`"
            } catch let error as PostgresError {
                if case .connectionLost = error, attempt == 1 { continue }
                if case .connectionFailed = error { return "the database is unreachable" }
                if case .connectionLost = error { return "the database is unreachable" }
                return "the database refused the readiness check: \(error)"
            } catch let error as MigrationError {
                return "the database has migrations this server does not know: \(error)"
            } catch {
                return "the readiness check failed: \(error)"
            }
        }
        return "the database is unreachable"
    }

    // MARK: - Tasks

    func submitTask(_ input: Operations.SubmitTask.Input) async throws -> Operations.SubmitTask.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("The body must be JSON.") }
        // The middleware's exact parse of the body: numbers keep every digit.
        var context = JSONValue.object([:])
        if case .object(let fields)? = RequestJSON.current, let given = fields["context"] {
            context = given
        }
        guard case .object = context else {
            throw Problem.invalidRequest("context must be a JSON object.", errors: [.init(path: "context", message: "must be an object")])
        }
        var runAt = body.runAt
        if let delay = body.delay {
            guard runAt == nil else {
                throw Problem.invalidRequest("Give run_at or delay, not both.", errors: [.init(path: "delay", message: "cannot be given with run_at")])
            }
            do {
                let duration = try TemplateDuration(parsing: delay)
                runAt = Date().addingTimeInterval(Double(duration.milliseconds) / 1000)
            } catch {
                throw Problem.invalidRequest("delay '\(delay)' is not a duration: \(error.message).",
                                             errors: [.init(path: "delay", message: "must be a duration such as 30s, 5m or 1h")])
            }
        }
        let reference = try TemplateReference(parsing: body.template)
        // The server's own request span when it traces (a child of the caller's), else the caller's
        // traceparent header; one that is not a W3C trace context is ignored, as W3C asks (a new trace).
        let traceparent = Traceparent.ofCurrentContext() ?? input.headers.traceparent.flatMap(Traceparent.normalized)
        let request = TaskRequest(template: reference, context: context, idempotencyKey: input.headers.idempotencyKey,
                                  priority: Int(body.priority ?? 0), runAt: runAt, allowDeprecated: body.allowDeprecated ?? false,
                                  traceparent: traceparent)
        let creation = try await submissions.create(try TaskCreator.checked(request, from: try await templates.find(reference)))
        let created = Components.Schemas.TaskCreated(id: creation.taskID.uuidString.lowercased(), created: creation.created,
                                                     template: creation.templateReference, contextDiffers: creation.contextDiffers)
        if creation.created {
            return .created(.init(headers: .init(location: "/v1/tasks/\(created.id)"), body: .json(created)))
        }
        return .ok(.init(body: .json(created)))
    }

    func getTask(_ input: Operations.GetTask.Input) async throws -> Operations.GetTask.Output {
        let detail = try await client.task(try Self.taskID(input.path.id))
        return .ok(.init(body: .json(try Self.task(detail))))
    }

    func listTasks(_ input: Operations.ListTasks.Input) async throws -> Operations.ListTasks.Output {
        let query = input.query
        var filter = TaskFilter(namespace: query.namespace, templateName: query.template,
                                states: Set((query.state ?? []).compactMap { TaskState(rawValue: $0.rawValue) }),
                                createdAfter: query.createdAfter, createdBefore: query.createdBefore, limit: query.limit ?? 50)
        if let limit = query.limit, !(1...1000).contains(limit) {
            throw Problem.invalidRequest("limit must be between 1 and 1000.", errors: [.init(path: "limit", message: "must be between 1 and 1000")])
        }
        if let cursor = query.cursor {
            guard let parsed = TaskCursor(cursor) else {
                throw Problem.badRequest("cursor '\(cursor)' is not a cursor: pass the next_cursor of the previous page.")
            }
            filter.after = parsed
        }
        let rows = try await client.tasks(filter: filter)
        let page = Components.Schemas.TaskPage(
            tasks: try rows.map(Self.summary),
            nextCursor: rows.count == filter.limit ? rows.last?.cursor.description : nil)
        return .ok(.init(body: .json(page)))
    }

    func cancelTask(_ input: Operations.CancelTask.Input) async throws -> Operations.CancelTask.Output {
        let id = try Self.taskID(input.path.id)
        let state = try await client.cancel(id, reason: Self.givenReason() ?? "cancelled through the API")
        return .ok(.init(body: .json(.init(id: id.uuidString.lowercased(), state: try Self.state(state)))))
    }

    func listTaskEvents(_ input: Operations.ListTaskEvents.Input) async throws -> Operations.ListTaskEvents.Output {
        let id = try Self.taskID(input.path.id)
        let events = try await client.events(id)
        if input.headers.accept.contains(where: { $0.contentType == .textEventStream }) {
            let after = input.headers.lastEventID.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } ?? 0
            return .ok(.init(body: .textEventStream(eventStream(id, after: max(after, 0)))))
        }
        return .ok(.init(body: .json(.init(events: events.map(Self.event)))))
    }

    /// Server-Sent Events: every transition after `after` (by position), then each new one when
    /// the hub wakes the stream, until the task is finished or in error (`event: end`), the client
    /// goes away, or the server shuts down gracefully.
    private func eventStream(_ id: UUID, after: Int) -> HTTPBody {
        let (stream, continuation) = AsyncStream.makeStream(of: ArraySlice<UInt8>.self)
        let client = self.client, hub = self.hub, logger = self.logger
        let producer = Task {
            let (subscription, wakes) = await hub.subscribe(id)
            await cancelWhenGracefulShutdown {
                var sent = after
                for await _ in wakes {
                    do {
                        // The state first: the events read after it include every move up to it.
                        let state: String = try await client.pool.query("SELECT state FROM orcastra.tasks WHERE id = \(id)")
                            .first?.decode("state") ?? "cancelled"
                        let events = try await client.events(id)
                        for (index, event) in events.enumerated() where index + 1 > sent {
                            continuation.yield(ArraySlice(Self.sse(id: index + 1, event: "transition", data: try Self.eventJSON(event))))
                        }
                        sent = max(sent, events.count)
                        if let state = TaskState(rawValue: state), state.isTerminal || state == .error {
                            continuation.yield(ArraySlice(Self.sse(id: nil, event: "end", data: #"{"state":"\#(state.rawValue)"}"#)))
                            break
                        }
                    } catch {
                        if Task.isCancelled { break }
                        logger.warning("event stream failed", metadata: ["task": "\(id)", "error": "\(error)"])
                        continuation.yield(ArraySlice(Self.sse(id: nil, event: "error", data: #"{"detail":"the stream stopped; reconnect with Last-Event-ID"}"#)))
                        break
                    }
                }
            }
            await hub.unsubscribe(id, id: subscription)
            continuation.finish()
        }
        continuation.onTermination = { _ in producer.cancel() }
        return HTTPBody(stream, length: .unknown, iterationBehavior: .single)
    }

    static func sse(id: Int?, event: String, data: String) -> [UInt8] {
        Array(((id.map { "id: \($0)\n" } ?? "") + "event: \(event)\ndata: \(data)\n\n").utf8)
    }

    static func eventJSON(_ event: TransitionEvent) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(try RFC3339Dates().encode(date))
        }
        return String(decoding: try encoder.encode(Self.event(event)), as: UTF8.self)
    }

    func retryStep(_ input: Operations.RetryStep.Input) async throws -> Operations.RetryStep.Output {
        try await client.retryStep(input.path.id, reason: Self.givenReason() ?? "retried through the API")
        return .ok(.init(body: .json(try await step(input.path.id))))
    }

    func resolveStep(_ input: Operations.ResolveStep.Input) async throws -> Operations.ResolveStep.Output {
        var result = JSONValue.null
        if case .object(let fields)? = RequestJSON.current {
            result = fields["result"] ?? .null
        }
        try await client.resolveStep(input.path.id, result: result, reason: Self.givenReason() ?? "resolved through the API")
        return .ok(.init(body: .json(try await step(input.path.id))))
    }

    /// The body's `reason` (cancel, retry, resolve), as the middleware parsed it; nil without one.
    private static func givenReason() -> String? {
        guard case .object(let fields)? = RequestJSON.current, case .string(let reason)? = fields["reason"],
              !reason.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
        return reason
    }

    private func step(_ id: Int64) async throws -> Components.Schemas.Step {
        Self.step(try await client.step(id).step)
    }

    // MARK: - Templates

    func listTemplates(_ input: Operations.ListTemplates.Input) async throws -> Operations.ListTemplates.Output {
        .ok(.init(body: .json(.init(templates: try await registry.list().map(Self.templateSummary)))))
    }

    func listTemplateVersions(_ input: Operations.ListTemplateVersions.Input) async throws -> Operations.ListTemplateVersions.Output {
        let namespace = input.path.namespace, name = input.path.name
        let versions = try await registry.list().filter { $0.namespace == namespace && $0.name == name }
        if versions.isEmpty {
            // Through find, for the closest names.
            _ = try await registry.find(TemplateReference(namespace: namespace, name: name))
        }
        return .ok(.init(body: .json(.init(templates: versions.map(Self.templateSummary)))))
    }

    func getTemplate(_ input: Operations.GetTemplate.Input) async throws -> Operations.GetTemplate.Output {
        let version: SemanticVersion
        do {
            version = try SemanticVersion(parsing: input.path.version)
        } catch {
            throw Problem("unknown-template", .notFound, title: "Unknown template",
                          detail: "No template \(input.path.namespace)/\(input.path.name)@\(input.path.version): '\(input.path.version)' is not a version (MAJOR.MINOR.PATCH).")
        }
        let stored = try await registry.find(TemplateReference(namespace: input.path.namespace, name: input.path.name, version: version))
        let template = stored.template
        let schema = try template.inputSchema.map { schema in
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            return try JSONValue(parsing: String(decoding: try encoder.encode(schema), as: UTF8.self))
        }
        let detail = Components.Schemas.TemplateDetail(
            namespace: template.namespace, name: template.name, version: template.version.description,
            reference: template.reference, description: template.description, source: stored.source, inputSchema: schema,
            steps: template.steps.map { step in
                .init(name: step.name, description: step.description, namespace: step.namespace, dependsOn: step.dependsOn,
                      maxAttempts: step.retry.maxAttempts, timeout: step.timeout.description)
            },
            registeredAt: stored.registeredAt, isDefault: stored.isDefault, isDeprecated: stored.deprecatedAt != nil,
            isUnpinnedChoice: stored.isUnpinnedChoice, unpinnedVersion: stored.unpinnedVersion?.description,
            deprecatedAt: stored.deprecatedAt, deprecationReason: stored.deprecationReason, id: stored.id,
            contentHash: stored.contentHash)
        return .ok(.init(body: .json(detail)))
    }

    func registerTemplate(_ input: Operations.RegisterTemplate.Input) async throws -> Operations.RegisterTemplate.Output {
        guard case .yaml(let body) = input.body else { throw Problem.badRequest("The body must be YAML.") }
        // The middleware has already refused a body over the limit.
        let bytes = try await [UInt8](collecting: body, upTo: Int.max)
        guard let source = String(validating: bytes, as: UTF8.self) else {
            throw Problem.badRequest("The template is not UTF-8 text.")
        }
        let template = try TemplateParser.parse(yaml: source, file: "request body")
        let outcome = try await registry.register(LoadedTemplate(file: "request body", source: source, template: template))
        switch outcome {
        case .registered(let id):
            return .created(.init(body: .json(.init(reference: template.reference, created: true, id: id))))
        case .unchanged(let id):
            return .ok(.init(body: .json(.init(reference: template.reference, created: false, id: id))))
        }
    }

    // MARK: - Conversions

    static func taskID(_ text: String) throws -> UUID {
        guard let id = UUID(uuidString: text) else {
            throw Problem.badRequest("'\(text)' is not a task id (a UUID).")
        }
        return id
    }

    static func state(_ state: TaskState) throws -> Components.Schemas.TaskState {
        guard let converted = Components.Schemas.TaskState(rawValue: state.rawValue) else {
            throw Problem.internalError(incident: "state")
        }
        return converted
    }

    static func task(_ task: TaskDetail) throws -> Components.Schemas.Task {
        .init(id: task.id.uuidString.lowercased(), template: task.template, templateNamespace: task.templateNamespace,
              templateName: task.templateName, templateVersion: task.templateVersion, state: try state(task.state),
              stateReason: task.stateReason, priority: task.priority, idempotencyKey: task.idempotencyKey,
              traceparent: task.traceparent, context: task.context, runAt: task.runAt, createdAt: task.createdAt, startedAt: task.startedAt,
              finishedAt: task.finishedAt, error: task.error, parentTaskId: task.parentTaskID, parentStepId: task.parentStepID,
              parentStepName: task.parentStepName, steps: task.steps.map(step))
    }

    static func step(_ step: StepDetail) -> Components.Schemas.Step {
        .init(id: step.id, name: step.name, namespace: step.namespace, state: step.state.rawValue, stateReason: step.stateReason,
              attempts: step.attempts, maxAttempts: step.maxAttempts, startedAt: step.startedAt, finishedAt: step.finishedAt,
              durationSeconds: step.durationSeconds, lastError: step.lastError, result: step.result, dependsOn: step.dependsOn,
              workflow: step.workflow, childTaskId: step.childTaskID)
    }

    static func summary(_ task: TaskSummary) throws -> Components.Schemas.TaskSummary {
        .init(id: task.id.uuidString.lowercased(), template: task.template, templateNamespace: task.templateNamespace,
              templateName: task.templateName, state: try state(task.state), priority: task.priority, createdAt: task.createdAt,
              startedAt: task.startedAt, finishedAt: task.finishedAt, stepCount: task.stepCount,
              finishedStepCount: task.finishedStepCount, error: task.error, cursor: task.cursor.description)
    }

    static func event(_ event: TransitionEvent) -> Components.Schemas.Event {
        .init(time: event.time, kind: event.kind == .task ? .task : .step, stepId: event.stepID, stepName: event.stepName,
              from: event.from, to: event.to, reason: event.reason, attempt: event.attempt, metadata: event.metadata)
    }

    static func templateSummary(_ summary: TemplateSummary) -> Components.Schemas.TemplateSummary {
        .init(namespace: summary.namespace, name: summary.name, version: summary.version, reference: summary.reference,
              description: summary.description, stepCount: summary.stepCount, registeredAt: summary.registeredAt,
              isDefault: summary.isDefault, isDeprecated: summary.isDeprecated, isUnpinnedChoice: summary.isUnpinnedChoice,
              deprecatedAt: summary.deprecatedAt, deprecationReason: summary.deprecationReason)
    }
}
