import Foundation
import OpenAPIRuntime
import OrcastraAPITypes
import OrcastraClient
import OrcastraSchedules
import OrcastraStateMachines
import OrcastraStore
import OrcastraTemplates

/// The generated types of docs/openapi.yaml turned into the library's own values.
extension OrcastraAPI {
    static func uuid(_ text: String) throws -> UUID {
        guard let id = UUID(uuidString: text) else { throw APIAnswerError("'\(text)' is not a UUID") }
        return id
    }

    static func taskState(_ text: String) throws -> TaskState {
        guard let state = TaskState(rawValue: text) else { throw APIAnswerError("'\(text)' is not a task state") }
        return state
    }

    static func stepState(_ text: String) throws -> StepState {
        guard let state = StepState(rawValue: text) else { throw APIAnswerError("'\(text)' is not a step state") }
        return state
    }

    static func task(_ task: Components.Schemas.Task) throws -> TaskDetail {
        TaskDetail(id: try uuid(task.id), template: task.template, templateNamespace: task.templateNamespace,
                   templateName: task.templateName, templateVersion: task.templateVersion, state: try taskState(task.state.rawValue),
                   stateReason: task.stateReason, priority: task.priority, idempotencyKey: task.idempotencyKey,
                   traceparent: task.traceparent, context: task.context, runAt: task.runAt, createdAt: task.createdAt, startedAt: task.startedAt,
                   finishedAt: task.finishedAt, error: task.error, steps: try task.steps.map(step),
                   parentTaskID: task.parentTaskId, parentStepID: task.parentStepId, parentStepName: task.parentStepName)
    }

    static func step(_ step: Components.Schemas.Step) throws -> StepDetail {
        StepDetail(id: step.id, name: step.name, namespace: step.namespace, state: try stepState(step.state),
                   stateReason: step.stateReason, attempts: step.attempts, maxAttempts: step.maxAttempts,
                   startedAt: step.startedAt, finishedAt: step.finishedAt, durationSeconds: step.durationSeconds,
                   lastError: step.lastError, result: step.result.flatMap { $0 == .null ? nil : $0 }, dependsOn: step.dependsOn,
                   workflow: step.workflow, childTaskID: step.childTaskId)
    }

    static func summary(_ task: Components.Schemas.TaskSummary) throws -> TaskSummary {
        let id = try uuid(task.id)
        guard let cursor = task.cursor.flatMap(TaskCursor.init) else {
            throw APIAnswerError("task \(task.id) comes without its cursor (an older server?)")
        }
        return TaskSummary(id: id, template: task.template, templateNamespace: task.templateNamespace, templateName: task.templateName,
                           state: try taskState(task.state.rawValue), priority: task.priority, createdAt: task.createdAt,
                           startedAt: task.startedAt, finishedAt: task.finishedAt, stepCount: task.stepCount,
                           finishedStepCount: task.finishedStepCount, error: task.error, cursor: cursor)
    }

    static func event(_ event: Components.Schemas.Event) -> TransitionEvent {
        TransitionEvent(time: event.time, kind: event.kind == .task ? .task : .step, stepID: event.stepId, stepName: event.stepName,
                        from: event.from, to: event.to, reason: event.reason, attempt: event.attempt,
                        metadata: event.metadata.flatMap { $0 == .null ? nil : $0 })
    }

    static func schedule(_ schedule: Components.Schemas.Schedule) throws -> ScheduleInfo {
        ScheduleInfo(id: schedule.id, namespace: schedule.namespace, name: schedule.name, template: schedule.template, cron: schedule.cron,
                     timezone: schedule.timezone, startAt: schedule.startAt, endAt: schedule.endAt,
                     context: schedule.context, priority: schedule.priority, catchUp: schedule.catchUp.rawValue,
                     overlap: schedule.overlap.rawValue, paused: schedule.paused, nextFireAt: schedule.nextFireAt,
                     lastFireAt: schedule.lastFireAt, lastTaskID: schedule.lastTaskId, lastTaskState: schedule.lastTaskState,
                     lastOutcome: schedule.lastOutcome, lastError: schedule.lastError, firedCount: schedule.firedCount,
                     skippedCount: schedule.skippedCount, createdAt: schedule.createdAt, updatedAt: schedule.updatedAt)
    }

    static func templateSummary(_ summary: Components.Schemas.TemplateSummary) -> TemplateSummary {
        TemplateSummary(namespace: summary.namespace, name: summary.name, version: summary.version, description: summary.description,
                        stepCount: summary.stepCount, registeredAt: summary.registeredAt, isDefault: summary.isDefault,
                        isUnpinnedChoice: summary.isUnpinnedChoice ?? false, isDeprecated: summary.isDeprecated,
                        deprecatedAt: summary.deprecatedAt, deprecationReason: summary.deprecationReason)
    }
}

/// The server answered something docs/openapi.yaml does not allow.
struct APIAnswerError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = "the API's answer is not what docs/openapi.yaml describes: \(description)" }
}

/// Times as the server writes them (RFC 3339 with microseconds, PostgreSQL's precision) and reads
/// them (any RFC 3339 time).
struct APIDates: DateTranscoder {
    func encode(_ date: Date) throws -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    /// Rebuilt from whole seconds and microseconds as OrcastraPostgres builds a time it reads, so
    /// the CLI prints (and rounds) exactly what it prints over SQL.
    func decode(_ text: String) throws -> Date {
        guard let parsed = Timestamp.parse(text, timeZone: TimeZone(identifier: "UTC")!) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "'\(text)' is not an RFC 3339 time such as 2026-01-31T12:00:00Z"))
        }
        let time = parsed.timeIntervalSince1970
        var whole = time.rounded(.down)
        var micros = ((time - whole) * 1_000_000).rounded()
        if micros == 1_000_000 { whole += 1; micros = 0 }
        return Date(timeIntervalSince1970: whole + micros / 1_000_000)
    }
}
