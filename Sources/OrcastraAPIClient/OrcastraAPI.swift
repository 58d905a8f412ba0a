import Foundation
import HTTPTypes
import OpenAPIRuntime
import OrcastraAPITypes
import OrcastraClient
import OrcastraSchedules
import OrcastraStateMachines
import OrcastraStore
import OrcastraTemplates

/// Orcastra's HTTP API (docs/api.md) through the client generated from docs/openapi.yaml,
/// answering in OrcastraClient's and OrcastraStore's own values, so a caller (the CLI with
/// `--api-url`) prints the same whichever way it reached the engine.
///
/// A refusal is thrown as an ``APIProblem`` (the server's problem+json); a server that cannot be
/// reached as ``APIUnreachable``.
public struct OrcastraAPI: Sendable {
    public let url: URL
    let client: Client

    /// `url` is the API's base (`http://host:8080`); `token` the bearer token (`orcastra token create`);
    /// `caCertificates` a private CA to trust besides the system's (`--api-cacert`).
    public init(url text: String, token: String?, caCertificates: APICACertificates? = nil) throws(APIAddressError) {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
              url.host?.isEmpty == false else {
            throw APIAddressError(url: text)
        }
        self.url = url
        client = Client(serverURL: url, configuration: .init(dateTranscoder: APIDates()),
                        transport: APITransport.make(caCertificates: caCertificates),
                        middlewares: token.map { [BearerToken(token: $0)] } ?? [])
    }

    // MARK: - Tasks

    public func submit(_ request: TaskRequest) async throws -> TaskCreation {
        let body = Components.Schemas.SubmitRequest(
            template: request.template.description, context: request.context,
            priority: request.priority == 0 ? nil : Int32(request.priority), runAt: request.runAt,
            allowDeprecated: request.allowDeprecated ? true : nil)
        let created: Components.Schemas.TaskCreated
        switch try await call({ try await client.submitTask(headers: .init(idempotencyKey: request.idempotencyKey, traceparent: request.traceparent), body: .json(body)) }) {
        case .created(let response): created = try response.body.json
        case .ok(let response): created = try response.body.json
        case .default(let status, let problem): throw APIProblem(status: status, problem: try problem.body.applicationProblemJson)
        }
        return TaskCreation(taskID: try Self.uuid(created.id), created: created.created, templateReference: created.template,
                            contextDiffers: created.contextDiffers)
    }

    public func task(_ id: UUID) async throws -> TaskDetail {
        switch try await call({ try await client.getTask(path: .init(id: id.uuidString.lowercased())) }) {
        case .ok(let response): return try Self.task(try response.body.json)
        case .default(let status, let problem): throw APIProblem(status: status, problem: try problem.body.applicationProblemJson)
        }
    }

    /// One page of the listing, newest first; `filter.after` continues after a row.
    public func tasks(filter: TaskFilter) async throws -> [TaskSummary] {
        let states = filter.states.isEmpty ? nil
            : filter.states.map(\.rawValue).sorted().compactMap(Components.Schemas.TaskState.init(rawValue:))
        let query = Operations.ListTasks.Input.Query(
            state: states, namespace: filter.namespace, template: filter.templateName, createdAfter: filter.createdAfter,
            createdBefore: filter.createdBefore, limit: filter.limit, cursor: filter.after?.description)
        switch try await call({ try await client.listTasks(query: query) }) {
        case .ok(let response): return try response.body.json.tasks.map(Self.summary)
        case .default(let status, let problem): throw APIProblem(status: status, problem: try problem.body.applicationProblemJson)
        }
    }

    /// The task's state afterwards; `reason` goes into the task's log (the API's own without one).
    public func cancel(_ id: UUID, reason: String? = nil) async throws -> TaskState {
        let body = reason.map { Operations.CancelTask.Input.Body.json(.init(reason: $0)) }
        switch try await call({ try await client.cancelTask(path: .init(id: id.uuidString.lowercased()), body: body) }) {
        case .ok(let response): return try Self.taskState(try response.body.json.state.rawValue)
        case .default(let status, let problem): throw APIProblem(status: status, problem: try problem.body.applicationProblemJson)
        }
    }

    public func events(_ id: UUID) async throws -> [TransitionEvent] {
        switch try await call({ try await client.listTaskEvents(path: .init(id: id.uuidString.lowercased()), headers: .init(accept: [.init(contentType: .json)])) }) {
        case .ok(let response): return try response.body.json.events.map(Self.event)
        case .default(let status, let problem): throw APIProblem(status: status, problem: try problem.body.applicationProblemJson)
        }
    }

    /// One step with its attempts and state changes (`GET /v1/steps/{id}/attempts`).
    public func step(_ id: Int64) async throws -> StepHistory {
        switch try await call({ try await client.listStepAttempts(path: .init(id: id)) }) {
        case .ok(let response):
            let answer = try response.body.json
            guard let transitions = answer.transitions else {
                throw APIAnswerError("step \(id) comes without its transitions (an older server?)")
            }
            return StepHistory(taskID: try Self.uuid(answer.taskId), template: answer.template, step: try Self.step(answer.step),
                               transitions: transitions.map(Self.event))
        case .default(let status, let problem): throw APIProblem(status: status, problem: try problem.body.applicationProblemJson)
        }
    }

    /// Reads the task's live event stream (`Accept: text/event-stream`) after event `after`,
    /// calling `onTransition` for each transition as it comes, until the stream ends. Returns the
    /// id of the last event read (for `Last-Event-ID` on a reconnect) and whether the server said
    /// `end` (the task is finished or in error). A stream cut short (the transport's one-minute
    /// limit on a request, a proxy) throws ``APIUnreachable``: take it up again after `lastID`.
    public func followEvents(_ id: UUID, after: Int,
                             onTransition: @Sendable (TransitionEvent) async throws -> Void) async throws -> (lastID: Int, ended: Bool) {
        let headers = Operations.ListTaskEvents.Input.Headers(lastEventID: after > 0 ? String(after) : nil,
                                                              accept: [.init(contentType: .textEventStream)])
        let body: HTTPBody
        switch try await call({ try await client.listTaskEvents(path: .init(id: id.uuidString.lowercased()), headers: headers) }) {
        case .ok(let response): body = try response.body.textEventStream
        case .default(let status, let problem): throw APIProblem(status: status, problem: try problem.body.applicationProblemJson)
        }
        var last = after
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            try APIDates().decode(try decoder.singleValueContainer().decode(String.self))
        }
        var events = body.asDecodedServerSentEvents().makeAsyncIterator()
        while true {
            let next: ServerSentEvent?
            do {
                next = try await events.next()
            } catch let error where !(error is CancellationError) {
                throw APIUnreachable(url: url.absoluteString, reason: "the event stream broke: \(APITransport.reason(error))")
            }
            guard let event = next else { return (last, false) }
            switch event.event {
            case "transition":
                if let text = event.id, let number = Int(text) { last = max(last, number) }
                guard let data = event.data else { continue }
                try await onTransition(Self.event(try decoder.decode(Components.Schemas.Event.self, from: Data(data.utf8))))
            case "end":
                return (last, true)
            default:
                continue
            }
        }
    }

    /// The step's state afterwards; `reason` goes into the step's log (the API's own without one).
    public func retryStep(_ id: Int64, reason: String? = nil) async throws -> StepState {
        let body = reason.map { Operations.RetryStep.Input.Body.json(.init(reason: $0)) }
        switch try await call({ try await client.retryStep(path: .init(id: id), body: body) }) {
        case .ok(let response): return try Self.stepState(try response.body.json.state)
        case .default(let status, let problem): throw APIProblem(status: status, problem: try problem.body.applicationProblemJson)
        }
    }

    public func resolveStep(_ id: Int64, result: JSONValue, reason: String) async throws -> StepState {
        let body = Components.Schemas.ResolveRequest(result: result, reason: reason)
        switch try await call({ try await client.resolveStep(path: .init(id: id), body: .json(body)) }) {
        case .ok(let response): return try Self.stepState(try response.body.json.state)
        case .default(let status, let problem): throw APIProblem(status: status, problem: try problem.body.applicationProblemJson)
        }
    }

    /// Namespaces where steps are queued and no live worker is registered (`GET /v1/workers`).
    public func unservedNamespaces() async throws -> Set<String> {
        Set(try await workers(namespace: nil, includeStale: false).unserved.map(\.namespace))
    }

    /// The worker registry (`GET /v1/workers`), as `OrcastraClient.workers` and `unservedNamespaces` read it.
    public func workers(namespace: String?, includeStale: Bool) async throws -> (workers: [WorkerInfo], unserved: [UnservedNamespace]) {
        let query = Operations.ListWorkers.Input.Query(namespace: namespace, includeStale: includeStale)
        switch try await call({ try await client.listWorkers(query: query) }) {
        case .ok(let response):
            let list = try response.body.json
            return (list.workers.map { worker in
                WorkerInfo(id: worker.id, namespace: worker.namespace, host: worker.host, pid: worker.pid, version: worker.version,
                           concurrency: worker.concurrency, runningSteps: worker.runningSteps,
                           heartbeatIntervalSeconds: worker.heartbeatIntervalSeconds, startedAt: worker.startedAt,
                           lastSeenAt: worker.lastSeenAt, secondsSinceLastSeen: worker.secondsSinceLastSeen, stale: worker.stale)
            }, list.unserved.map { UnservedNamespace(namespace: $0.namespace, enqueuedSteps: $0.enqueuedSteps) })
        case .default(let status, let problem): throw APIProblem(status: status, problem: try problem.body.applicationProblemJson)
        }
    }

    // MARK: - Schedules

    /// Every schedule, or one namespace's, by namespace and name (`GET /v1/schedules`).
    public func schedules(namespace: String? = nil) async throws -> [ScheduleInfo] {
        switch try await call({ try await client.listSchedules(query: .init(namespace: namespace)) }) {
        case .ok(let response): return try response.body.json.schedules.map(Self.schedule)
        case .default(let status, let problem): throw APIProblem(status: status, problem: try problem.body.applicationProblemJson)
        }
    }

    /// The schedule `name` names; a name without its namespace is looked up in the list first, with
    /// the same refusals as over SQL (`ScheduleError.ambiguous`, `.notFound` with close names).
    public func schedule(_ name: ScheduleName) async throws -> ScheduleInfo {
        try name.pick(from: try await schedules())
    }

    /// A new schedule (`POST /v1/schedules`), checked by the server as over SQL.
    public func createSchedule(_ definition: ScheduleDefinition) async throws -> ScheduleInfo {
        switch try await call({ try await client.createSchedule(body: .json(Self.scheduleRequest(definition))) }) {
        case .created(let response): return try Self.schedule(try response.body.json)
        case .default(let status, let problem): throw APIProblem(status: status, problem: try problem.body.applicationProblemJson)
        }
    }

    /// `PUT /v1/schedules/{namespace}/{name}`: the schedule made to match `definition` (checked
    /// first by the server); with `dryRun`, only what would change.
    public func applySchedule(_ definition: ScheduleDefinition, dryRun: Bool) async throws -> ScheduleChange {
        let namespace = definition.template.split(separator: "/").first.map(String.init) ?? ""
        switch try await call({ try await client.applySchedule(path: .init(namespace: namespace, name: definition.name),
                                                               query: .init(dryRun: dryRun), body: .json(Self.scheduleRequest(definition))) }) {
        case .ok(let response):
            let applied = try response.body.json
            switch applied.change {
            case .created: return .created
            case .updated: return .updated(applied.updatedKeys)
            case .unchanged: return .unchanged
            }
        case .default(let status, let problem): throw APIProblem(status: status, problem: try problem.body.applicationProblemJson)
        }
    }

    public func pauseSchedule(_ name: ScheduleName) async throws -> ScheduleInfo {
        let path = try await schedulePath(name)
        switch try await call({ try await client.pauseSchedule(path: .init(namespace: path.namespace, name: path.name)) }) {
        case .ok(let response): return try Self.schedule(try response.body.json)
        case .default(let status, let problem): throw APIProblem(status: status, problem: try problem.body.applicationProblemJson)
        }
    }

    public func resumeSchedule(_ name: ScheduleName) async throws -> ScheduleInfo {
        let path = try await schedulePath(name)
        switch try await call({ try await client.resumeSchedule(path: .init(namespace: path.namespace, name: path.name)) }) {
        case .ok(let response): return try Self.schedule(try response.body.json)
        case .default(let status, let problem): throw APIProblem(status: status, problem: try problem.body.applicationProblemJson)
        }
    }

    public func deleteSchedule(_ name: ScheduleName) async throws -> ScheduleInfo {
        let path = try await schedulePath(name)
        switch try await call({ try await client.deleteSchedule(path: .init(namespace: path.namespace, name: path.name)) }) {
        case .ok(let response): return try Self.schedule(try response.body.json)
        case .default(let status, let problem): throw APIProblem(status: status, problem: try problem.body.applicationProblemJson)
        }
    }

    /// One run now: the task started and the time it is scheduled for.
    public func triggerSchedule(_ name: ScheduleName) async throws -> (task: UUID, scheduledFor: Date) {
        let path = try await schedulePath(name)
        switch try await call({ try await client.triggerSchedule(path: .init(namespace: path.namespace, name: path.name)) }) {
        case .created(let response):
            let run = try response.body.json
            return (try Self.uuid(run.taskId), run.scheduledFor)
        case .default(let status, let problem): throw APIProblem(status: status, problem: try problem.body.applicationProblemJson)
        }
    }

    static func scheduleRequest(_ definition: ScheduleDefinition) -> Components.Schemas.ScheduleRequest {
        .init(name: definition.name, template: definition.template, cron: definition.cron.source,
              timezone: definition.timeZone.identifier, startAt: definition.startAt, endAt: definition.endAt,
              context: definition.context, priority: Int32(clamping: definition.priority),
              catchUp: .init(rawValue: definition.catchUp.rawValue), overlap: .init(rawValue: definition.overlap.rawValue),
              paused: definition.paused)
    }

    /// Namespace and name for the path: as given, or found in the list for a bare name.
    private func schedulePath(_ name: ScheduleName) async throws -> (namespace: String, name: String) {
        if let namespace = name.namespace { return (namespace, name.name) }
        let schedule = try await schedule(name)
        return (schedule.namespace, schedule.name)
    }

    // MARK: - Templates

    public func templates() async throws -> [TemplateSummary] {
        switch try await call({ try await client.listTemplates() }) {
        case .ok(let response): return try response.body.json.templates.map(Self.templateSummary)
        case .default(let status, let problem): throw APIProblem(status: status, problem: try problem.body.applicationProblemJson)
        }
    }

    /// The version `reference` names, or the one a reference without a version takes.
    public func template(_ reference: TemplateReference) async throws -> StoredTemplate {
        var version = reference.version?.description
        if version == nil {
            let versions: [Components.Schemas.TemplateSummary]
            switch try await call({ try await client.listTemplateVersions(path: .init(namespace: reference.namespace, name: reference.name)) }) {
            case .ok(let response): versions = try response.body.json.templates
            case .default(let status, let problem): throw APIProblem(status: status, problem: try problem.body.applicationProblemJson)
            }
            // A family with versions but none to take: GET the family's highest to let the server
            // say why (prereleases only, everything deprecated) is not possible, so say it here.
            guard let chosen = versions.first(where: { $0.isUnpinnedChoice == true }) else {
                throw APIProblem(status: 404, type: "unknown-template", title: "No version to take",
                                 detail: "\(reference) has no version a reference without one takes (only prereleases, or every release deprecated without a default). Pin one: \(versions.map(\.reference).joined(separator: ", ")).")
            }
            version = chosen.version
        }
        let path = Operations.GetTemplate.Input.Path(namespace: reference.namespace, name: reference.name, version: version ?? "")
        let detail: Components.Schemas.TemplateDetail
        switch try await call({ try await client.getTemplate(path: path) }) {
        case .ok(let response): detail = try response.body.json
        case .default(let status, let problem): throw APIProblem(status: status, problem: try problem.body.applicationProblemJson)
        }
        // The server parsed this very source when it was registered.
        let template = try TemplateParser.parse(yaml: detail.source, file: "\(detail.reference) (from \(url.absoluteString))")
        return StoredTemplate(id: detail.id ?? 0, template: template, source: detail.source, contentHash: detail.contentHash ?? "",
                              registeredAt: detail.registeredAt, deprecatedAt: detail.deprecatedAt,
                              deprecationReason: detail.deprecationReason, isDefault: detail.isDefault,
                              unpinnedVersion: try detail.unpinnedVersion.map { try SemanticVersion(parsing: $0) })
    }

    /// Registers one template file's YAML; the server checks it again.
    public func register(yaml source: String) async throws -> TemplateRegistry.Registration {
        let registration: Components.Schemas.Registration
        switch try await call({ try await client.registerTemplate(body: .yaml(HTTPBody(source))) }) {
        case .created(let response): registration = try response.body.json
        case .ok(let response): registration = try response.body.json
        case .default(let status, let problem): throw APIProblem(status: status, problem: try problem.body.applicationProblemJson)
        }
        return registration.created ? .registered(id: registration.id ?? 0) : .unchanged(id: registration.id ?? 0)
    }

    // MARK: - Transport

    /// Runs one call, turning a failure to reach the server into ``APIUnreachable``.
    private func call<Output>(_ body: () async throws -> Output) async throws -> Output {
        do {
            return try await body()
        } catch let error as OpenAPIRuntime.ClientError {
            if error.response == nil {
                throw APIUnreachable(url: url.absoluteString, reason: Self.reason(error.underlyingError))
            }
            throw APIUnreachable(url: url.absoluteString,
                                 reason: "its answer (HTTP \(error.response?.status.code ?? 0)) is not what docs/openapi.yaml describes: \(error.underlyingError)")
        }
    }

    private static func reason(_ error: any Error) -> String {
        APITransport.reason(error)
    }
}

/// The API answered with an RFC 9457 problem.
public struct APIProblem: Error, Sendable, CustomStringConvertible {
    public var status: Int
    /// The slug of `urn:orcastra:problem:<slug>` (docs/api.md), or the whole type if it is not ours.
    public var type: String
    public var title: String
    public var detail: String?
    public var fieldErrors: [(path: String?, message: String, line: Int?, column: Int?)]

    init(status: Int, type: String, title: String, detail: String?) {
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        fieldErrors = []
    }

    init(status: Int, problem: Components.Schemas.Problem) {
        let prefix = "urn:orcastra:problem:"
        self.init(status: status, type: problem._type.hasPrefix(prefix) ? String(problem._type.dropFirst(prefix.count)) : problem._type,
                  title: problem.title, detail: problem.detail)
        fieldErrors = (problem.errors ?? []).map { ($0.path, $0.message, $0.line, $0.column) }
    }

    public var description: String { detail ?? title }
}

/// The server could not be reached, or did not answer as an Orcastra API does.
public struct APIUnreachable: Error, Sendable, CustomStringConvertible {
    public var url: String
    public var reason: String
    public var description: String {
        "Cannot reach the Orcastra API at \(url): \(reason). Check --api-url (or ORCASTRA_API_URL) and that an orchestrator serves it (`orcastra-orchestrator --http-address`)."
    }
}

public struct APIAddressError: Error, Sendable, CustomStringConvertible {
    public var url: String
    public var description: String {
        "'\(url)' is not an API address: write the orchestrator's base URL, e.g. http://127.0.0.1:8080 or https://orcastra.example.com."
    }
}

/// Sends `Authorization: Bearer TOKEN` with every request.
struct BearerToken: ClientMiddleware {
    let token: String

    func intercept(_ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
                   next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        request.headerFields[.authorization] = "Bearer \(token)"
        return try await next(request, body, baseURL)
    }
}
