import Foundation
import Logging
import OrcastraPostgres
import OrcastraStateMachines
import OrcastraTemplates

// Claiming: the claim loop and what a claim brings back.
extension Worker {
    func claimLoop() async {
        var backoff = Backoff()
        for await _ in wakeups {
            if Task.isCancelled || state.isDraining { break }
            while true {
                let limit = state.reserveClaim()
                guard limit > 0 else { break }
                let sentAt = ContinuousClock.now
                do {
                    let connection = try await claimSlot.get()
                    let rows = try await connection.query(claimStatement(limit: limit))
                    let steps = await accept(rows, reserved: limit, sentAt: sentAt)
                    backoff.reset()
                    if steps < limit { break }
                } catch {
                    state.claimEnded(reserved: limit, steps: [], sentAt: sentAt)
                    if Task.isCancelled || state.isDraining { break }
                    let delay = backoff.next()
                    logger.warning("claiming failed; retrying", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                    try? await Task.sleep(for: delay)
                }
            }
        }
    }

    nonisolated func claimStatement(limit: Int) -> SQL {
        """
        SELECT * FROM orcastra.claim_steps(\(configuration.namespace), \(configuration.workerID), \(limit)::int, \(Int(configuration.lease.milliseconds))::int)
        """
    }

    /// Takes the claimed rows: each step starts at once. A row that cannot be read is handed back
    /// so it is not left owned by nobody. Returns how many rows came back.
    func accept(_ rows: QueryResult, reserved: Int, sentAt: ContinuousClock.Instant) async -> Int {
        var steps: [ClaimedStep] = []
        var unreadable: [Lease] = []
        for row in rows {
            switch ClaimedStep.decode(row) {
            case .success(var step):
                step.trace = AttemptTrace.start(step, tracer: tracer, namespace: configuration.namespace, workerID: configuration.workerID)
                steps.append(step)
            case .failure(let failure):
                logger.error("a claimed row could not be read; handing it back", metadata: ["error": "\(failure.error)"])
                if let lease = failure.lease { unreadable.append(lease) }
            }
        }
        state.claimEnded(reserved: reserved, steps: steps, sentAt: sentAt)
        for step in steps { start(step) }
        if !unreadable.isEmpty { await handBack(unreadable) }
        return rows.count
    }

    func start(_ step: ClaimedStep) {
        handlers[step.lease] = Task { await self.execute(step) }
        logger.debug("step claimed", metadata: step.logMetadata)
    }
}
