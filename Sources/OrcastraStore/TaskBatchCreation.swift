import Foundation
import OrcastraPostgres

extension TaskCreator {
    /// What became of one entry of ``createBatch(_:)``.
    public enum BatchOutcome: Sendable {
        /// Made, or found by its idempotency key.
        case made(TaskCreation)
        /// `create_task` refused this entry (a deprecated version, a missing concurrency key, a
        /// `workflow:` step naming no template); the other entries were not affected.
        case refused(StoreError)
        /// Refused in a way only the one-task path words for a person: send it alone.
        case alone
    }

    /// The most entries one ``createBatch(_:)`` takes (`orcastra.create_task_batch`'s limit).
    public static let maximumBatch = 64

    /// Creates several checked submissions in one statement and one transaction
    /// (`orcastra.create_task_batch`, Migrations/functions/submit_batch.sql): one commit for all
    /// of them. Each entry is `create_task`'s own call and gets its own outcome, in the order given.
    ///
    /// - Throws: when the statement as a whole failed (then it made nothing: the transaction was
    ///   rolled back), or when the connection was lost (then whether it committed is unknown).
    public func createBatch(_ submissions: [CheckedSubmission]) async throws -> [BatchOutcome] {
        precondition(submissions.count <= Self.maximumBatch, "at most \(Self.maximumBatch) submissions a batch")
        if submissions.isEmpty { return [] }
        let requests = submissions.map(\.request)
        let statement: SQL = """
            SELECT n, task_id, created, template_version, context_differs, error_code, error_message
            FROM orcastra.create_task_batch(\(submissions.map(\.stored.id))::bigint[], \(submissions.map(\.context))::jsonb[],
                                            \(requests.map(\.idempotencyKey))::text[], \(requests.map(\.priority))::integer[],
                                            \(requests.map(\.runAt))::timestamptz[],
                                            \(requests.map { $0.allowDeprecated && $0.template.version != nil })::boolean[],
                                            \(requests.map(\.traceparent))::text[])
            """
        let rows = try await Self.runNotifyingAfterCommit(statement, on: pool)
        var outcomes = [BatchOutcome](repeating: .alone, count: submissions.count)
        for row in rows {
            let index = try row.decode("n", as: Int.self) - 1
            guard outcomes.indices.contains(index) else { continue }
            let submission = submissions[index]
            if let code = try row.decode("error_code", as: String?.self) {
                let message = try row.decode("error_message", as: String?.self) ?? ""
                outcomes[index] = await refusal(sqlState: code, message: message, submission).map(BatchOutcome.refused) ?? .alone
                continue
            }
            let template = submission.stored.template
            outcomes[index] = .made(TaskCreation(
                taskID: try row.decode("task_id"), created: try row.decode("created"),
                templateReference: "\(template.namespace)/\(template.name)@\(try row.decode("template_version", as: String.self))",
                contextDiffers: try row.decode("context_differs")))
        }
        return outcomes
    }
}
