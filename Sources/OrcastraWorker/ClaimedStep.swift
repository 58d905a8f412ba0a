import Foundation
import Logging
import OrcastraPostgres
import OrcastraTemplates

/// A step this worker holds a lease on, as `orcastra.claim_steps` returned it.
///
/// The step's input (the task's context and the parents' results) stays JSON text here: it is
/// parsed by the step's own task when it starts, never on the worker actor, and an input that
/// cannot be read fails that step alone.
struct ClaimedStep: Sendable {
    var id: Int64
    var leaseToken: UUID
    var taskID: UUID
    var name: String
    var attempt: Int
    var maxAttempts: Int
    var templateID: Int64
    /// nil for a fan-out instance whose step's `instance_input` does not list them.
    var contextText: String?
    var parentsText: String?
    /// The W3C trace context the task was submitted under (nil for tasks made before migration 0008).
    var taskTraceparent: String?
    /// This attempt's span and what it hands on; set when the step starts (AttemptTrace.start).
    var trace = AttemptTrace.none
    /// Enqueued → claimed, and the task's age at the claim, by the database's clock (for metrics).
    var queueWaitSeconds: Double = 0
    var taskAgeSeconds: Double = 0
    /// When this worker got the claim's answer, by its own clock.
    var claimedAt = ContinuousClock.now
    /// The metrics' labels, known once the step's template was read (`Worker.execute`).
    var handlerLabel = "unknown"
    var templateLabel = "unknown"
    /// For an instance of a fan-out (`for_each`): its item (JSON text) and index; nil otherwise.
    var itemText: String? = nil
    var itemIndex: Int? = nil

    /// The template step this row runs: an instance `charge[3]` runs the definition of `charge`.
    var definitionName: String {
        guard itemIndex != nil, let bracket = name.lastIndex(of: "[") else { return name }
        return String(name[..<bracket])
    }

    /// A claimed row, or the lease it holds when the rest of the row could not be read (the worker
    /// then hands the step back at once instead of leaving it owned by nobody).
    static func decode(_ row: PostgresRow) -> Result<ClaimedStep, UndecodableClaim> {
        let id: Int64, token: UUID
        do {
            id = try row.decode("step_id")
            token = try row.decode("lease_token")
        } catch {
            return .failure(UndecodableClaim(lease: nil, error: error))
        }
        do {
            return .success(ClaimedStep(
                id: id, leaseToken: token,
                taskID: try row.decode("task_id"), name: try row.decode("step_name"),
                attempt: try row.decode("attempt"), maxAttempts: try row.decode("max_attempts"),
                templateID: try row.decode("template_id"),
                contextText: try row.decode("context", as: String?.self), parentsText: try row.decode("parents", as: String?.self),
                taskTraceparent: (try? row.decode("traceparent", as: String?.self)) ?? nil,
                queueWaitSeconds: (try? row.decode("queue_wait_seconds", as: Double?.self) ?? 0) ?? 0,
                taskAgeSeconds: (try? row.decode("task_age_seconds", as: Double?.self) ?? 0) ?? 0,
                itemText: try row.decode("item", as: String?.self), itemIndex: try row.decode("item_index", as: Int?.self)))
        } catch {
            return .failure(UndecodableClaim(lease: Lease(stepID: id, token: token), error: error))
        }
    }

    var lease: Lease { Lease(stepID: id, token: leaseToken) }

    /// What every log line about this attempt carries: task, step, attempt, and the attempt's
    /// `trace_id` and `span_id` when it is traced.
    var logMetadata: Logger.Metadata {
        var metadata: Logger.Metadata = ["task": "\(taskID.uuidString.lowercased())", "step": "\(name)", "attempt": "\(attempt)"]
        metadata.merge(trace.logMetadata) { $1 }
        return metadata
    }

    /// Parses the input; throws a permanent failure that says what is wrong with it.
    func input() throws -> StepInput {
        do {
            let context = try contextText.map { try JSONValue(parsing: $0) }
            let item = try itemText.map { try JSONValue(parsing: $0) }
            var parents: [String: JSONValue]?
            if let parentsText {
                // The parents' results sit one level deeper here than where they were checked.
                guard case .object(let object) = try JSONValue(parsing: parentsText, maximumDepth: JSONValue.maximumDepth + 1) else {
                    throw StepFailure.permanent("the step's input could not be read: its parents' results are not a JSON object")
                }
                parents = object
            }
            return StepInput(context: context, parents: parents, item: item, index: itemIndex)
        } catch let error as StepFailure {
            throw error
        } catch {
            throw StepFailure.permanent("the step's input could not be read: \(error)")
        }
    }
}

/// One attempt's hold on a step: what every report and heartbeat must present.
struct Lease: Sendable, Hashable {
    var stepID: Int64
    var token: UUID
}

struct UndecodableClaim: Error {
    var lease: Lease?
    var error: any Error
}

/// How an attempt ended, waiting to be reported.
struct StepOutcome: Sendable {
    enum Result: Sendable {
        /// The result as JSON text, already checked against the size limit and what jsonb can store.
        case success(json: String)
        /// `retryAfterMilliseconds` nil means permanent.
        case failure(message: String, retryAfterMilliseconds: Int64?)
    }

    var step: ClaimedStep
    var result: Result

    var isSuccess: Bool {
        if case .success = result { return true }
        return false
    }
}

/// What PostgreSQL can store in text: no NUL characters.
enum Storable {
    /// The longest error message kept; the database keeps at most this much as well.
    static let maximumErrorCharacters = 65_536

    /// A failure message as PostgreSQL can store it: NUL characters (which no PostgreSQL text can
    /// hold) are shown as `\0`, and the message says so; very long messages keep their end.
    static func errorMessage(_ message: String) -> String {
        var text = message
        if text.contains("\0") {
            text = text.replacingOccurrences(of: "\0", with: "\\0") + " (NUL characters shown as \\0)"
        }
        if text.count > maximumErrorCharacters {
            text = "…" + String(text.suffix(maximumErrorCharacters - 1))
        }
        return text
    }
}

/// What a step receives: the task's context, its parents' results, and for an instance of a
/// fan-out its item and index. An instance has the context and the parents only when its step's
/// `instance_input` lists them (docs/templates.md, "Fan-out"); every other step has both.
struct StepInput: Sendable {
    var context: JSONValue?
    var parents: [String: JSONValue]?
    var item: JSONValue?
    var index: Int?

    /// What a Swift handler's `Input` is decoded from: the context, or null when it was not passed.
    var handlerInput: JSONValue { context ?? .null }

    /// `{"context": …, "parents": …}` (each when present), plus `"item"` and `"index"` for an
    /// instance of a fan-out: a command step's stdin.
    var document: JSONValue {
        var object: [String: JSONValue] = [:]
        if let context { object["context"] = context }
        if let parents { object["parents"] = .object(parents) }
        if let item, let index {
            object["item"] = item
            object["index"] = .number(JSONNumber(index))
        }
        return .object(object)
    }
}
