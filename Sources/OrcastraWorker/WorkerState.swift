import Foundation

/// Everything a worker holds, as a value: its slots, the steps it leases and where each one is,
/// and whether it is shutting down. Every method is pure — time comes in as an argument — and
/// says what the worker must do; `Worker` performs that I/O. Tested without a database in
/// WorkerStateTests.
///
/// A step occupies its slot from its claim until its outcome is reported (or it is dropped), so
/// at most `concurrency` steps are held and at most that many outcomes wait: nothing here grows
/// without bound.
struct WorkerState: Sendable {
    typealias Instant = ContinuousClock.Instant

    enum Phase: Sendable, Equatable {
        /// Claiming and running.
        case running
        /// Shutting down gracefully: no more claims; running handlers may finish until the deadline.
        case draining(deadline: Instant)
    }

    enum Stage: Sendable {
        /// The handler is at work.
        case running
        /// The handler was cancelled because its timeout passed; its end is reported as a timeout.
        case timingOut(limit: Duration)
        /// Done; the outcome waits for the reporter.
        case finished(StepOutcome)
        /// The outcome is in a report in flight.
        case reporting(StepOutcome)
    }

    struct Held: Sendable {
        var step: ClaimedStep
        var stage: Stage
        /// Until when the lease surely holds: when the last claim or heartbeat that extended it was
        /// sent, plus the lease. The server's expiry is never earlier.
        var leaseHeldUntil: Instant
        /// When a Swift handler's time is up (commands time out in their own runner), and its timeout.
        var handlerDeadline: Instant?
        var handlerTimeout: Duration = .zero
        /// How many reports of this outcome failed for a passing reason.
        var reportFailures = 0
    }

    let concurrency: Int
    let claimBatch: Int
    let lease: Duration
    /// How long before the lease runs out the worker stops a step it could not heartbeat.
    let fencingMargin: Duration
    /// Reports of one outcome that may fail for a passing reason before the step is dropped (its
    /// lease then expires and an orchestrator records the lost attempt).
    static let maximumReportFailures = 20

    private(set) var phase: Phase = .running
    private(set) var held: [Int64: Held] = [:]
    /// Slots promised to claims in flight.
    private(set) var reserved = 0

    init(concurrency: Int, claimBatch: Int, lease: Duration) {
        precondition(concurrency > 0 && claimBatch > 0 && lease > .zero)
        self.concurrency = concurrency
        self.claimBatch = min(claimBatch, concurrency)
        self.lease = lease
        fencingMargin = min(lease / 10, .seconds(1))
    }

    var freeSlots: Int { concurrency - held.count - reserved }
    var isDraining: Bool { phase != .running }
    var isEmpty: Bool { held.isEmpty }

    func holds(_ lease: Lease) -> Bool { held[lease.stepID]?.step.leaseToken == lease.token }

    // MARK: - Claiming

    /// How many steps to claim now (reserved until `claimEnded`); 0 while shutting down or full.
    mutating func reserveClaim() -> Int {
        guard phase == .running else { return 0 }
        let limit = min(freeSlots, claimBatch)
        guard limit > 0 else { return 0 }
        reserved += limit
        return limit
    }

    /// How many steps a report may claim in the same transaction, given the slots it frees.
    mutating func reserveRefill(freeing: Int) -> Int {
        guard phase == .running else { return 0 }
        let limit = min(claimBatch, freeSlots + freeing)
        guard limit > 0 else { return 0 }
        reserved += limit
        return limit
    }

    /// A claim of `reserved` slots sent at `sentAt` returned `steps` (none when it failed).
    mutating func claimEnded(reserved count: Int, steps: [ClaimedStep], sentAt: Instant) {
        reserved -= count
        for step in steps {
            held[step.id] = Held(step: step, stage: .running, leaseHeldUntil: sentAt + lease)
        }
    }

    // MARK: - Running

    /// A Swift handler started at `now` with `timeout`.
    mutating func setHandlerTimeout(_ lease: Lease, _ timeout: Duration, now: Instant) {
        guard holds(lease) else { return }
        held[lease.stepID]?.handlerDeadline = now + timeout
        held[lease.stepID]?.handlerTimeout = timeout
    }

    enum CancellationReason: Sendable, Equatable {
        /// Its timeout passed: report a retryable failure.
        case timedOut(Duration)
        /// The step is no longer ours (lease lost, task cancelled, shut down, fenced): report nothing.
        case abandoned
    }

    func cancellationReason(_ lease: Lease) -> CancellationReason {
        guard holds(lease), case .timingOut(let limit) = held[lease.stepID]?.stage else { return .abandoned }
        return .timedOut(limit)
    }

    /// The handler ended. Returns true when the outcome is to be reported; false when the step is
    /// no longer ours, or already has an outcome.
    mutating func handlerFinished(_ outcome: StepOutcome) -> Bool {
        let lease = outcome.step.lease
        guard holds(lease), let entry = held[lease.stepID] else { return false }
        switch entry.stage {
        case .running, .timingOut:
            held[lease.stepID]?.stage = .finished(outcome)
            held[lease.stepID]?.handlerDeadline = nil
            return true
        case .finished, .reporting:
            return false
        }
    }

    // MARK: - Reporting

    var hasFinished: Bool {
        held.values.contains { if case .finished = $0.stage { true } else { false } }
    }

    /// Handlers still at work (outcomes may follow soon: worth waiting a moment to batch them).
    var runningCount: Int {
        held.values.filter { switch $0.stage { case .running, .timingOut: true; default: false } }.count
    }

    /// The outcomes to report next, at most one per step (a step is held once), now in flight.
    mutating func takeBatch() -> [StepOutcome] {
        var batch: [StepOutcome] = []
        for (id, entry) in held {
            guard case .finished(let outcome) = entry.stage else { continue }
            held[id]?.stage = .reporting(outcome)
            batch.append(outcome)
        }
        return batch.sorted { $0.step.id < $1.step.id }
    }

    /// The report of `batch` committed: these steps leave their slots.
    mutating func reported(_ batch: [StepOutcome]) {
        for outcome in batch where holds(outcome.step.lease) {
            held[outcome.step.id] = nil
        }
    }

    /// The report failed for a passing reason (the connection, a deadlock victim): the outcomes
    /// wait for the next try. Returns the steps given up on after too many tries; they are no
    /// longer held, so their leases run out and an orchestrator records the lost attempts.
    mutating func reportFailed(_ batch: [StepOutcome]) -> [StepOutcome] {
        var dropped: [StepOutcome] = []
        for outcome in batch where holds(outcome.step.lease) {
            let id = outcome.step.id
            held[id]?.reportFailures += 1
            if (held[id]?.reportFailures ?? 0) >= Self.maximumReportFailures {
                held[id] = nil
                dropped.append(outcome)
            } else {
                held[id]?.stage = .finished(outcome)
            }
        }
        return dropped
    }

    /// Gives up on a step: it leaves its slot without a report.
    mutating func drop(_ lease: Lease) {
        if holds(lease) { held[lease.stepID] = nil }
    }

    /// Returns the slots of a refill claim that did not happen.
    mutating func releaseReservation(_ count: Int) {
        reserved -= count
    }

    // MARK: - Heartbeats

    /// The leases to extend: every step held, running or waiting for its report.
    var leases: [Lease] { held.values.map(\.step.lease).sorted { $0.stepID < $1.stepID } }

    /// Steps held: claimed, their outcome not yet reported (what the registry calls running).
    var heldCount: Int { held.count }

    /// A heartbeat sent at `sentAt` for `leases` answered `alive` per step id. Returns the steps
    /// no longer ours (task cancelled, lease lost): their handlers must stop; nothing is reported.
    mutating func heartbeatAnswered(_ leases: [Lease], alive: [Int64: Bool], sentAt: Instant) -> [Lease] {
        var lost: [Lease] = []
        let renewedUntil = sentAt + lease
        for lease in leases where holds(lease) {
            if alive[lease.stepID] == true, let current = held[lease.stepID]?.leaseHeldUntil {
                let until = max(current, renewedUntil)
                held[lease.stepID]?.leaseHeldUntil = until
            } else {
                held[lease.stepID] = nil
                lost.append(lease)
            }
        }
        return lost
    }

    // MARK: - Time

    struct Expiry: Sendable, Equatable {
        /// Handlers whose timeout passed: cancel them; their end is reported as a timeout.
        var timedOut: [Lease] = []
        /// Steps whose lease could not be renewed in time: stop them and forget them, so that no
        /// attempt outlives its lease on this worker (another worker may run the step next).
        var fenced: [Lease] = []
    }

    mutating func expire(now: Instant) -> Expiry {
        var expiry = Expiry()
        for (id, entry) in held {
            if now >= entry.leaseHeldUntil - fencingMargin {
                held[id] = nil
                expiry.fenced.append(entry.step.lease)
            } else if case .running = entry.stage, let deadline = entry.handlerDeadline, now >= deadline {
                held[id]?.stage = .timingOut(limit: entry.handlerTimeout)
                expiry.timedOut.append(entry.step.lease)
            }
        }
        expiry.timedOut.sort { $0.stepID < $1.stepID }
        expiry.fenced.sort { $0.stepID < $1.stepID }
        return expiry
    }

    /// When `expire` next has something to do, if ever.
    var nextDeadline: Instant? {
        held.values.map { entry -> Instant in
            let fence = entry.leaseHeldUntil - fencingMargin
            if case .running = entry.stage, let deadline = entry.handlerDeadline { return min(deadline, fence) }
            return fence
        }.min()
    }

    // MARK: - Shutdown

    /// Stops claiming; running handlers may finish until `deadline`.
    mutating func beginDrain(deadline: Instant) {
        if case .draining(let earlier) = phase {
            phase = .draining(deadline: min(earlier, deadline))
        } else {
            phase = .draining(deadline: deadline)
        }
    }

    /// The end of the grace period: every step still held is given up. Returns those whose
    /// handlers must be stopped and that must be handed back (their attempt does not count).
    mutating func abandonAll() -> [Lease] {
        let leases = self.leases
        held.removeAll()
        return leases
    }
}
