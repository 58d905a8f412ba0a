import Foundation
import Testing
@testable import OrcastraWorker

/// The worker's bookkeeping as a value, driven with a clock of our own: no database, no timers.
@Suite(.timeLimit(.minutes(5))) struct WorkerStateTests {
    let t0 = ContinuousClock.now

    static func step(_ id: Int64, attempt: Int = 1) -> ClaimedStep {
        ClaimedStep(id: id, leaseToken: UUID(), taskID: UUID(), name: "s\(id)", attempt: attempt, maxAttempts: 3,
                    templateID: 1, contextText: "{}", parentsText: "{}")
    }

    static func success(_ step: ClaimedStep) -> StepOutcome { StepOutcome(step: step, result: .success(json: "{}")) }

    func state(concurrency: Int = 4, batch: Int = 4, lease: Duration = .seconds(30)) -> WorkerState {
        WorkerState(concurrency: concurrency, claimBatch: batch, lease: lease)
    }

    @Test func claimsNeverOverfillTheSlots() {
        var state = state(concurrency: 5, batch: 3)
        let v1 = state.reserveClaim()
        #expect(v1 == 3)
        let v2 = state.reserveClaim()
        #expect(v2 == 2)       // two claims in flight fill the five slots
        let v3 = state.reserveClaim()
        #expect(v3 == 0)
        state.claimEnded(reserved: 3, steps: [Self.step(1), Self.step(2)], sentAt: t0)
        #expect(state.freeSlots == 1)            // the short claim gave one slot back
        state.claimEnded(reserved: 2, steps: [], sentAt: t0)
        #expect(state.freeSlots == 3)
        let v4 = state.reserveRefill(freeing: 2)
        #expect(v4 == 3)
    }

    @Test func aSlotStaysTakenUntilItsOutcomeIsReported() {
        var state = state(concurrency: 1, batch: 1)
        let step = Self.step(7)
        state.claimEnded(reserved: state.reserveClaim(), steps: [step], sentAt: t0)
        let v5 = state.handlerFinished(Self.success(step))
        #expect(v5)
        let v6 = state.reserveClaim()
        #expect(v6 == 0)
        let batch = state.takeBatch()
        #expect(batch.map(\.step.id) == [7])
        let v7 = state.takeBatch()
        #expect(v7.isEmpty)       // in flight: not taken twice
        let v8 = state.reserveClaim()
        #expect(v8 == 0)
        state.reported(batch)
        #expect(state.isEmpty)
        let v9 = state.reserveClaim()
        #expect(v9 == 1)
    }

    @Test func aBatchHoldsOneOutcomePerStepAndOnlyTheCurrentLease() {
        var state = state()
        let old = Self.step(3)
        state.claimEnded(reserved: state.reserveClaim(), steps: [old], sentAt: t0)
        // The lease was lost and the same worker claimed the step again under a new token.
        _ = state.heartbeatAnswered([old.lease], alive: [3: false], sentAt: t0)
        let again = Self.step(3, attempt: 2)
        state.claimEnded(reserved: state.reserveClaim(), steps: [again], sentAt: t0)
        let v10 = state.handlerFinished(Self.success(old))
        #expect(!v10)   // the stale attempt reports nothing
        let v11 = state.handlerFinished(Self.success(again))
        #expect(v11)
        let v12 = state.handlerFinished(Self.success(again))
        #expect(!v12)  // a second outcome for one attempt is refused
        let batch = state.takeBatch()
        #expect(batch.count == 1 && batch[0].step.leaseToken == again.leaseToken)
    }

    @Test func passingReportFailuresRetryThenGiveUpWithoutKeepingTheLease() {
        var state = state()
        let step = Self.step(1)
        state.claimEnded(reserved: state.reserveClaim(), steps: [step], sentAt: t0)
        _ = state.handlerFinished(Self.success(step))
        for attempt in 1..<WorkerState.maximumReportFailures {
            let batch = state.takeBatch()
            #expect(batch.count == 1, "try \(attempt)")
            let v13 = state.reportFailed(batch)
            #expect(v13.isEmpty)
        }
        let last = state.takeBatch()
        let v14 = state.reportFailed(last)
        #expect(v14.map(\.step.id) == [1])
        #expect(state.isEmpty)
        #expect(state.leases.isEmpty)             // no more heartbeats: the lease runs out
    }

    @Test func drainingStopsEveryClaimAndRefill() {
        var state = state()
        let step = Self.step(1)
        state.claimEnded(reserved: state.reserveClaim(), steps: [step], sentAt: t0)
        state.beginDrain(deadline: t0 + .seconds(5))
        let v15 = state.reserveClaim()
        #expect(v15 == 0)
        let v16 = state.reserveRefill(freeing: 1)
        #expect(v16 == 0)
        let v17 = state.handlerFinished(Self.success(step))
        #expect(v17)   // outcomes are still reported
        let v18 = state.takeBatch()
        #expect(v18.count == 1)
        let v19 = state.abandonAll()
        #expect(v19.map(\.stepID) == [1])
        #expect(state.isEmpty)
    }

    @Test func aHandlerPastItsTimeoutIsCancelledAndReportedAsATimeout() {
        var state = state()
        let step = Self.step(1)
        state.claimEnded(reserved: state.reserveClaim(), steps: [step], sentAt: t0)
        state.setHandlerTimeout(step.lease, .milliseconds(300), now: t0)
        #expect(state.nextDeadline == t0 + .milliseconds(300))
        let v20 = state.expire(now: t0 + .milliseconds(299))
        #expect(v20 == WorkerState.Expiry())
        let v21 = state.expire(now: t0 + .milliseconds(300))
        #expect(v21.timedOut == [step.lease])
        #expect(state.cancellationReason(step.lease) == .timedOut(.milliseconds(300)))
        let v22 = state.expire(now: t0 + .milliseconds(400))
        #expect(v22.timedOut.isEmpty)  // once
    }

    @Test func aLeaseThatCannotBeRenewedIsFencedBeforeItRunsOut() {
        var state = state(lease: .seconds(2))
        let a = Self.step(1), b = Self.step(2)
        state.claimEnded(reserved: state.reserveClaim(), steps: [a, b], sentAt: t0)
        // A heartbeat sent at 0.6 s renews a; b's answer was lost.
        _ = state.heartbeatAnswered([a.lease], alive: [1: true], sentAt: t0 + .milliseconds(600))
        // Fenced a margin before the lease would run out (lease / 10 = 200 ms).
        let v23 = state.expire(now: t0 + .milliseconds(1_799))
        #expect(v23.fenced.isEmpty)
        let v24 = state.expire(now: t0 + .milliseconds(1_800))
        #expect(v24.fenced == [b.lease])
        #expect(state.cancellationReason(b.lease) == .abandoned)
        let v25 = state.expire(now: t0 + .milliseconds(2_400))
        #expect(v25.fenced == [a.lease])
        #expect(state.isEmpty)
    }

    @Test func aHeartbeatReportsLostStepsAndTheirOutcomesAreDropped() {
        var state = state()
        let a = Self.step(1), b = Self.step(2)
        state.claimEnded(reserved: state.reserveClaim(), steps: [a, b], sentAt: t0)
        let lost = state.heartbeatAnswered([a.lease, b.lease], alive: [1: true, 2: false], sentAt: t0 + .seconds(1))
        #expect(lost == [b.lease])
        let v26 = state.handlerFinished(Self.success(b))
        #expect(!v26)
        #expect(state.leases == [a.lease])
    }

    @Test(arguments: [1, 2, 3, 5, 8])
    func heldStepsAndWaitingOutcomesAreBoundedByConcurrency(concurrency: Int) {
        var state = state(concurrency: concurrency, batch: 3)
        var next: Int64 = 0
        var claimed: [ClaimedStep] = []
        for round in 0..<50 {
            let limit = state.reserveClaim()
            let steps = (0..<limit).map { _ -> ClaimedStep in next += 1; return Self.step(next) }
            state.claimEnded(reserved: limit, steps: steps, sentAt: t0)
            claimed += steps
            for step in claimed where round % 2 == 0 { _ = state.handlerFinished(Self.success(step)) }
            #expect(state.leases.count <= concurrency)
            if round % 3 == 0 { state.reported(state.takeBatch()) }
            #expect(state.leases.count + state.reserved <= concurrency)
        }
    }
}
