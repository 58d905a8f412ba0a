import Foundation
import OrcastraAPITypes
import OrcastraClient
import OrcastraSchedules
import OrcastraTemplates

/// Schedules (docs/schedules.md) over HTTP: what `orcastra schedule create|list|show|pause|resume|
/// trigger|delete` do, on OrcastraClient's schedule calls.
extension APIHandler {
    func listSchedules(_ input: Operations.ListSchedules.Input) async throws -> Operations.ListSchedules.Output {
        let schedules = try await client.schedules(namespace: input.query.namespace)
        return .ok(.init(body: .json(.init(schedules: try schedules.map(Self.schedule)))))
    }

    func getSchedule(_ input: Operations.GetSchedule.Input) async throws -> Operations.GetSchedule.Output {
        let schedule = try await client.schedule(Self.scheduleName(input.path.namespace, input.path.name))
        return .ok(.init(body: .json(try Self.schedule(schedule))))
    }

    func createSchedule(_ input: Operations.CreateSchedule.Input) async throws -> Operations.CreateSchedule.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("The body must be JSON.") }
        // The middleware's exact parse of the body: the context keeps every digit.
        var context = JSONValue.object([:])
        if case .object(let fields)? = RequestJSON.current, let given = fields["context"] { context = given }
        guard case .object = context else {
            throw Problem.invalidRequest("context must be a JSON object.", errors: [.init(path: "context", message: "must be an object")])
        }
        let created = try await client.createSchedule(try Self.definition(body, context: context))
        let schedule = try Self.schedule(created)
        return .created(.init(headers: .init(location: "/v1/schedules/\(schedule.namespace)/\(schedule.name)"), body: .json(schedule)))
    }

    /// `orcastra schedule apply` for one schedule: checked (template, context) before anything is
    /// written; created, updated or left as it is.
    func applySchedule(_ input: Operations.ApplySchedule.Input) async throws -> Operations.ApplySchedule.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("The body must be JSON.") }
        var context = JSONValue.object([:])
        if case .object(let fields)? = RequestJSON.current, let given = fields["context"] { context = given }
        guard case .object = context else {
            throw Problem.invalidRequest("context must be a JSON object.", errors: [.init(path: "context", message: "must be an object")])
        }
        let definition = try Self.definition(body, context: context)
        guard definition.name == input.path.name else {
            throw Problem.invalidRequest("name '\(definition.name)' is not the path's '\(input.path.name)'.",
                                         errors: [.init(path: "name", message: "must be the name in the path")])
        }
        let namespace = definition.template.split(separator: "/").first.map(String.init) ?? ""
        guard namespace == input.path.namespace else {
            throw Problem.invalidRequest("template '\(definition.template)' is not in the path's namespace '\(input.path.namespace)': a schedule lives in its template's namespace.",
                                         errors: [.init(path: "template", message: "must be in the namespace in the path")])
        }
        try await client.checkSchedule(definition)
        let change: ScheduleChange, schedule: Components.Schemas.Schedule?
        if input.query.dryRun == true {
            change = try await client.scheduleChange(definition)
            schedule = nil
        } else {
            let (info, made) = try await client.applySchedule(definition)
            change = made
            schedule = try Self.schedule(info)
        }
        let answer: Components.Schemas.ScheduleApplied
        switch change {
        case .created: answer = .init(change: .created, updatedKeys: [], schedule: schedule)
        case .updated(let keys): answer = .init(change: .updated, updatedKeys: keys, schedule: schedule)
        case .unchanged: answer = .init(change: .unchanged, updatedKeys: [], schedule: schedule)
        }
        return .ok(.init(body: .json(answer)))
    }

    func deleteSchedule(_ input: Operations.DeleteSchedule.Input) async throws -> Operations.DeleteSchedule.Output {
        let schedule = try await client.deleteSchedule(Self.scheduleName(input.path.namespace, input.path.name))
        return .ok(.init(body: .json(try Self.schedule(schedule))))
    }

    func pauseSchedule(_ input: Operations.PauseSchedule.Input) async throws -> Operations.PauseSchedule.Output {
        let schedule = try await client.pauseSchedule(Self.scheduleName(input.path.namespace, input.path.name))
        return .ok(.init(body: .json(try Self.schedule(schedule))))
    }

    func resumeSchedule(_ input: Operations.ResumeSchedule.Input) async throws -> Operations.ResumeSchedule.Output {
        let schedule = try await client.resumeSchedule(Self.scheduleName(input.path.namespace, input.path.name))
        return .ok(.init(body: .json(try Self.schedule(schedule))))
    }

    func triggerSchedule(_ input: Operations.TriggerSchedule.Input) async throws -> Operations.TriggerSchedule.Output {
        let (task, scheduledFor) = try await client.triggerSchedule(Self.scheduleName(input.path.namespace, input.path.name))
        let id = task.uuidString.lowercased()
        return .created(.init(headers: .init(location: "/v1/tasks/\(id)"), body: .json(.init(taskId: id, scheduledFor: scheduledFor))))
    }

    // MARK: - Conversions

    /// Both parts are given by the path, so a name is never ambiguous.
    static func scheduleName(_ namespace: String, _ name: String) -> ScheduleName {
        ScheduleName("\(namespace)/\(name)")
    }

    static func schedule(_ info: ScheduleInfo) throws -> Components.Schemas.Schedule {
        guard let catchUp = Components.Schemas.Schedule.CatchUpPayload(rawValue: info.catchUp),
              let overlap = Components.Schemas.Schedule.OverlapPayload(rawValue: info.overlap) else {
            throw Problem.internalError(incident: "schedule-policy")
        }
        return .init(id: info.id, namespace: info.namespace, name: info.name, template: info.template, cron: info.cron,
                     timezone: info.timezone, startAt: info.startAt, endAt: info.endAt, context: info.context, priority: info.priority,
                     catchUp: catchUp, overlap: overlap, paused: info.paused, nextFireAt: info.nextFireAt, lastFireAt: info.lastFireAt,
                     lastTaskId: info.lastTaskID, lastTaskState: info.lastTaskState, lastOutcome: info.lastOutcome,
                     lastError: info.lastError, firedCount: info.firedCount, skippedCount: info.skippedCount,
                     createdAt: info.createdAt, updatedAt: info.updatedAt)
    }

    /// The request as a checked definition; each field at fault is named (422).
    static func definition(_ body: Components.Schemas.ScheduleRequest, context: JSONValue) throws -> ScheduleDefinition {
        let cron: CronExpression
        switch Result(catching: { () throws(CronError) in try CronExpression(parsing: body.cron) }) {
        case .success(let parsed): cron = parsed
        case .failure(let error):
            throw Problem.invalidRequest("cron '\(body.cron)': \(error)", errors: [.init(path: "cron", message: "\(error)")])
        }
        var zone = ScheduleDefinition.utc
        if let name = body.timezone {
            switch Result(catching: { () throws(ScheduleTimeZoneError) in try ScheduleTimeZone.named(name) }) {
            case .success(let found): zone = found
            case .failure(let error):
                throw Problem.invalidRequest("timezone: \(error)", errors: [.init(path: "timezone", message: "\(error)")])
            }
        }
        // Years 1 to 9999, as RFC 3339 writes them (and PostgreSQL stores them).
        let range = Date(timeIntervalSince1970: -62_135_596_800)...Date(timeIntervalSince1970: 253_402_300_799)
        for (path, date) in [("start_at", body.startAt), ("end_at", body.endAt)] {
            if let date, !range.contains(date) {
                throw Problem.invalidRequest("\(path) must be between the years 1 and 9999.", errors: [.init(path: path, message: "must be between the years 1 and 9999")])
            }
        }
        let made = Result { () throws(ScheduleDefinitionError) in
            try ScheduleDefinition(name: body.name, template: body.template, cron: cron, timeZone: zone, startAt: body.startAt,
                                   endAt: body.endAt, context: context,
                                   catchUp: body.catchUp.flatMap { CatchUpPolicy(rawValue: $0.rawValue) } ?? .latest,
                                   overlap: body.overlap.flatMap { OverlapPolicy(rawValue: $0.rawValue) } ?? .allow,
                                   priority: Int(body.priority ?? 0), paused: body.paused ?? false)
        }
        switch made {
        case .success(let definition): return definition
        case .failure(let error):
            let path = error.key == "end" ? "end_at" : error.key
            throw Problem.invalidRequest("\(path): \(error.message)", errors: [.init(path: path, message: error.message)])
        }
    }
}
