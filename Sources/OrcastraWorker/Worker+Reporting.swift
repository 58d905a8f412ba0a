import Foundation
import Logging
import OrcastraPostgres
import OrcastraStateMachines
import OrcastraTemplates

// Reporting: outcomes in batches, refilled slots in the same transaction, poison split off.
extension Worker {
    func reportLoop() async {
        var backoff = Backoff()
        for await _ in reportWakeups {
            while state.hasFinished {
                await coalesce()
                let batch = state.takeBatch()
                if batch.isEmpty { break }
                if await report(batch) {
                    backoff.reset()
                } else {
                    let delay = backoff.next()
                    try? await Task.sleep(for: delay)
                }
            }
            if Task.isCancelled { return }
        }
    }

    /// Under load, waits up to a millisecond for more handlers to finish, so one commit reports
    /// many steps; a lone step is reported at once.
    func coalesce() async {
        let deadline = ContinuousClock.now + .milliseconds(1)
        while state.runningCount > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .microseconds(100))
        }
    }

    /// Reports a batch with one `report_steps` call and refills the freed slots with `claim_steps`,
    /// in one pipelined round trip and one transaction: a finished step's children are claimed by
    /// the worker that finished it without waiting for a notification, and a batch costs one commit.
    ///
    /// When the database refuses the batch (not the connection: the data), each outcome is reported
    /// alone, so one outcome it cannot store never holds back the others; that one ends its own step
    /// with a readable error. Returns false when the report must be tried again later.
    func report(_ batch: [StepOutcome]) async -> Bool {
        let refill = state.reserveRefill(freeing: batch.count)
        // With a claim after it, the report leaves the wake-ups for what it enqueues to that claim,
        // which sends only those still needed (report_steps_then_claim): most commits notify no one.
        // Its notifications (task events, wake-ups the claim left) are taken as the pipeline's last
        // statement and sent after the commit (channels.sql, "Notifications sent after the commit").
        var statements = [Self.reportStatement(batch, claimFollows: refill > 0)]
        if refill > 0 { statements += [claimStatement(limit: refill), "SELECT orcastra.take_notifications() AS pending"] }
        let sentAt = ContinuousClock.now
        do {
            let connection = try await reportSlot.get()
            let replies = try await connection.pipeline(statements)
            state.reported(batch)
            log(replies[0], batch: batch)
            if refill > 0 {
                let claimed = await accept(replies[1], reserved: refill, sentAt: sentAt)
                if claimed == refill { wake.yield() }  // a full batch: there may be more
                await sendNotifications(replies[2], on: connection)
            } else {
                wake.yield()  // slots freed
            }
            return true
        } catch {
            if refill > 0 { state.releaseReservation(refill) }
            guard Self.isRefusal(error) else {
                let dropped = state.reportFailed(batch)
                logger.warning("reporting outcomes failed; retrying", metadata: ["error": "\(error)", "steps": "\(batch.count)"])
                for outcome in dropped {
                    logger.error("giving up reporting a step; its lease will expire and it will be retried",
                                 metadata: outcome.step.logMetadata)
                    outcome.step.trace.end(outcome: "unreported", error: "the outcome could not be reported: \(error)")
                }
                if !dropped.isEmpty { wake.yield() }
                return false
            }
            if batch.count > 1 {
                logger.warning("the database refused a batch of outcomes; reporting them one by one", metadata: ["error": "\(error)"])
                for outcome in batch { await reportAlone(outcome) }
            } else {
                await reportAlone(batch[0], refusal: error)
            }
            return true
        }
    }

    /// Sends what a committed report-and-claim collected (`take_notifications`), in a transaction
    /// of its own that commits without waiting for a flush. They are hints: one lost with the
    /// connection costs others latency (they poll), never work, so a failure is only logged.
    func sendNotifications(_ reply: QueryResult, on connection: PostgresConnection) async {
        guard let pending = try? reply.first?.decode("pending", as: String.self), !pending.isEmpty else { return }
        do {
            _ = try await connection.query("SELECT orcastra.send_notifications(\(pending)) AS sent")
        } catch {
            logger.debug("sending notifications after a report failed", metadata: ["error": "\(error)"])
        }
    }

    /// Reports one outcome; if the database refuses it, reports instead a failure that says why.
    func reportAlone(_ outcome: StepOutcome, refusal: (any Error)? = nil) async {
        var attempt = outcome
        var refusal = refusal
        for _ in 0..<2 {
            if let error = refusal {
                let reason = Storable.errorMessage("\(error)")
                attempt.result = outcome.isSuccess
                    ? .failure(message: "result not storable: \(reason)", retryAfterMilliseconds: nil)
                    : .failure(message: "the step failed, and its error could not be stored: \(reason)", retryAfterMilliseconds: nil)
            }
            do {
                let connection = try await reportSlot.get()
                let reply = try await connection.query(Self.reportStatement([attempt]))
                state.reported([outcome])
                log(reply, batch: [attempt])
                wake.yield()
                return
            } catch {
                guard Self.isRefusal(error) else {
                    // A passing fault: the reporter tries again later.
                    _ = state.reportFailed([outcome])
                    reportWake.yield()
                    return
                }
                if refusal != nil { break }
                refusal = error
            }
        }
        state.drop(outcome.step.lease)
        let reason = refusal.map { "\($0)" } ?? ""
        logger.error("the database refused this step's outcome; its lease will expire and it will be retried",
                     metadata: outcome.step.logMetadata.merging(["error": "\(reason)"]) { $1 })
        outcome.step.trace.end(outcome: "unreported", error: "the database refused the outcome: \(reason)")
        wake.yield()
    }

    /// The report of `batch`; with `claimFollows`, for a pipeline whose next statement is
    /// `claim_steps` in the same transaction (`report_steps_then_claim`).
    static func reportStatement(_ batch: [StepOutcome], claimFollows: Bool = false) -> SQL {
        var ids: [Int64] = [], tokens: [UUID] = [], results: [JSONText?] = [], errors: [String?] = [], retries: [Int64?] = []
        for outcome in batch {
            ids.append(outcome.step.id)
            tokens.append(outcome.step.leaseToken)
            switch outcome.result {
            case .success(let json):
                results.append(JSONText(json)); errors.append(nil); retries.append(nil)
            case .failure(let message, let retryAfter):
                results.append(nil); errors.append(message); retries.append(retryAfter)
            }
        }
        if claimFollows {
            return "SELECT * FROM orcastra.report_steps_then_claim(\(ids), \(tokens), \(results)::jsonb[], \(errors)::text[], \(retries)::bigint[])"
        }
        return "SELECT * FROM orcastra.report_steps(\(ids), \(tokens), \(results)::jsonb[], \(errors)::text[], \(retries)::bigint[])"
    }

    /// Whether the database refused the statement for what it holds (bad data, a constraint, a
    /// bug), as opposed to a passing fault: a lost connection, a deadlock or serialization victim,
    /// a cancelled statement, a server shutting down or short of resources, or a server that takes
    /// no writes (25006: a standby, or a primary demoted by a failover — the connection is replaced
    /// and the report goes to the new primary).
    static func isRefusal(_ error: any Error) -> Bool {
        switch error as? PostgresError {
        case .server(let server):
            let transientClasses = ["08", "40", "53", "57", "58", "55"]
            if server.sqlState == "25006" { return false }
            return !transientClasses.contains(String(server.sqlState.prefix(2)))
        case .invalidParameter, .invalidIdentifier, .decoding:
            return true
        case .connectionFailed, .connectionLost, .noRows, nil:
            return false
        }
    }

    func log(_ reply: QueryResult, batch: [StepOutcome]) {
        let byID = Dictionary(batch.map { ($0.step.id, $0) }, uniquingKeysWith: { first, _ in first })
        for row in reply {
            guard let id = try? row.decode("step_id", as: Int64.self), let outcome = try? row.decode("outcome", as: String.self),
                  let reported = byID[id] else { continue }
            let step = reported.step
            let metadata = step.logMetadata
            Self.endTrace(step, outcome: outcome, reported: reported.result)
            metrics.reported(outcome, step: step)
            switch ReportOutcome(rawValue: outcome) {
            case .completed: logger.debug("step complete", metadata: metadata)
            case .waitingForRetry, .error:
                if case .failure(let message, _) = reported.result {
                    logger.log(level: outcome == ReportOutcome.error.rawValue ? .error : .warning, "step attempt failed",
                               metadata: metadata.merging(["error": "\(message)", "next": "\(outcome)"]) { $1 })
                }
            case .ignored: logger.info("step outcome ignored: its task was cancelled", metadata: metadata)
            case .leaseLost, nil: logger.warning("step outcome refused: the lease was lost (the step may run elsewhere)", metadata: metadata)
            }
            if let taskState = try? row.decode("task_state", as: String?.self) {
                metrics.taskFinished(step, state: taskState)
                var taskMetadata: Logger.Metadata = ["task": "\(step.taskID.uuidString.lowercased())"]
                if let traceID = step.trace.logMetadata["trace_id"] { taskMetadata["trace_id"] = traceID }
                logger.log(level: taskState == TaskState.error.rawValue ? .error : .info, "task \(taskState)", metadata: taskMetadata)
            }
        }
    }

    /// Ends an attempt's span with what `report_steps` said; a failure carries its message.
    static func endTrace(_ step: ClaimedStep, outcome: String, reported: StepOutcome.Result) {
        switch ReportOutcome(rawValue: outcome) {
        case .completed, .ignored:
            step.trace.end(outcome: outcome)
        case .waitingForRetry, .error:
            if case .failure(let message, _) = reported {
                step.trace.end(outcome: outcome, error: message)
            } else {
                step.trace.end(outcome: outcome, error: outcome)
            }
        case .leaseLost, nil:
            step.trace.end(outcome: outcome, error: "the lease was lost: the step may run elsewhere")
        }
    }
}
