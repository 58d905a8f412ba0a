import Foundation
import Logging
import OrcastraPostgres
import OrcastraStateMachines
import OrcastraTemplates

// Heartbeats, timeouts and self-fencing: keeping leases, and never outliving one.
extension Worker {
    /// Registers the worker, then heartbeats its steps every third of the lease and beats its
    /// registry row every `registryBeatInterval`, in the same wake-ups: with the default 30 s
    /// lease both come every 10 s together, so an idle worker wakes no more often than before.
    func heartbeatLoop() async {
        await register()
        await checkNamespace()
        let stepInterval = configuration.lease / 3
        let beatInterval = configuration.registryBeatInterval
        // A beat due this soon rides on the step heartbeat's wake-up instead of waking again.
        let slack = beatInterval / 10
        var nextSteps = ContinuousClock.now + stepInterval
        var nextBeat = ContinuousClock.now + beatInterval
        while !Task.isCancelled {
            try? await Task.sleep(until: min(nextSteps, nextBeat), clock: .continuous)
            if Task.isCancelled { break }
            let woke = ContinuousClock.now
            let stepsDue = woke >= nextSteps
            let beatDue = woke >= nextBeat - slack
            if stepsDue { await heartbeat() }
            if beatDue { await beatRegistry() }
            let now = ContinuousClock.now
            if stepsDue { nextSteps = now + stepInterval }
            if beatDue { nextBeat = now + beatInterval }
        }
    }

    func heartbeat() async {
        let leases = state.leases
        guard !leases.isEmpty else { return }
        let sentAt = ContinuousClock.now
        do {
            let connection = try await heartbeatSlot.get()
            let rows = try await connection.query("""
                SELECT * FROM orcastra.heartbeat_steps(\(leases.map(\.stepID)), \(leases.map(\.token)), \(Int(configuration.lease.milliseconds))::int)
                """)
            var alive: [Int64: Bool] = [:]
            for row in rows { alive[try row.decode("step_id")] = try row.decode("alive") }
            for lease in state.heartbeatAnswered(leases, alive: alive, sentAt: sentAt) {
                handlers[lease]?.cancel()
                logger.info("step stopped: its task was cancelled or its lease lost", metadata: ["step_id": "\(lease.stepID)"])
                wake.yield()
            }
        } catch {
            logger.warning("heartbeat failed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: - Timeouts and fencing

    /// Cancels Swift handlers whose timeout passed, and stops every step whose lease could not be
    /// renewed in time (self-fencing: no attempt outlives its lease here, so none runs twice at
    /// once). Sleeps until the next deadline, checking at least every 100 ms while steps are held
    /// and every second when idle.
    func deadlineLoop() async {
        while !Task.isCancelled {
            let now = ContinuousClock.now
            let expiry = state.expire(now: now)
            for lease in expiry.timedOut { handlers[lease]?.cancel() }
            for lease in expiry.fenced {
                handlers[lease]?.cancel()
                logger.error("stopped a step whose lease could not be renewed (the database did not answer heartbeats); it may run elsewhere",
                             metadata: ["step_id": "\(lease.stepID)"])
            }
            if !expiry.fenced.isEmpty { wake.yield() }
            let cap: Duration = state.isEmpty ? .seconds(1) : .milliseconds(100)
            let next = min(state.nextDeadline ?? now + cap, now + cap)
            try? await Task.sleep(until: max(next, now + .milliseconds(5)), clock: .continuous)
        }
    }
}
