import Foundation
import OrcastraPostgres
import OrcastraTemplates

/// A step this worker holds a lease on, as `orcastra.claim_steps` returned it.
struct ClaimedStep: Sendable {
    var id: Int64
    var taskID: UUID
    var name: String
    var attempt: Int
    var maxAttempts: Int
    var leaseToken: UUID
    var templateID: Int64
    var context: JSONValue
    var parents: [String: JSONValue]

    init(row: PostgresRow) throws {
        id = try row.decode("step_id")
        taskID = try row.decode("task_id")
        name = try row.decode("step_name")
        attempt = try row.decode("attempt")
        maxAttempts = try row.decode("max_attempts")
        leaseToken = try row.decode("lease_token")
        templateID = try row.decode("template_id")
        context = try JSONValue(parsing: try row.decode("context", as: String.self))
        guard case .object(let parents) = try JSONValue(parsing: try row.decode("parents", as: String.self)) else {
            throw PostgresError.decoding(column: "parents", type: .jsonb, value: nil, reason: "not an object")
        }
        self.parents = parents
    }
}

/// How an attempt ended, waiting to be reported.
struct StepOutcome: Sendable {
    enum Result: Sendable {
        case success(JSONValue)
        /// `retryAfter` nil means permanent.
        case failure(message: String, retryAfter: Duration?)
    }

    var step: ClaimedStep
    var result: Result
}
