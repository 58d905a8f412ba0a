import OrcastraStateMachines
import Testing

/// Every (from, to) pair of both machines, legal and illegal, against an independent spelling of
/// the rules: a change to either the table or this list must be deliberate.
@Suite(.timeLimit(.minutes(3))) struct StateMachineTests {
    static let legalTaskMoves: Set<String> = [
        "pending→in_progress", "pending→cancelled",
        "in_progress→waiting_for_retry", "in_progress→error", "in_progress→complete",
        "in_progress→cancelled", "in_progress→resolved_manually",
        "waiting_for_retry→in_progress", "waiting_for_retry→complete", "waiting_for_retry→error",
        "waiting_for_retry→cancelled", "waiting_for_retry→resolved_manually",
        "error→in_progress", "error→complete", "error→cancelled", "error→resolved_manually",
    ]

    static let legalStepMoves: Set<String> = [
        "pending→enqueued", "pending→cancelled", "pending→resolved_manually", "pending→skipped",
        "pending→complete", "pending→error",
        // A workflow step starting its child task, first or after an operator's retry.
        "pending→in_progress", "error→in_progress",
        "enqueued→in_progress", "enqueued→cancelled",
        "in_progress→complete", "in_progress→waiting_for_retry", "in_progress→error",
        "in_progress→enqueued", "in_progress→cancelled",
        "waiting_for_retry→enqueued", "waiting_for_retry→cancelled", "waiting_for_retry→resolved_manually",
        "error→enqueued", "error→resolved_manually",
        // A fan-out that failed with its instances, reopened when one of them is retried or resolved.
        "error→pending",
    ]

    static let taskPairs = TaskState.allCases.flatMap { from in TaskState.allCases.map { (from, $0) } }
    static let stepPairs = StepState.allCases.flatMap { from in StepState.allCases.map { (from, $0) } }

    @Test(arguments: taskPairs)
    func taskPair(from: TaskState, to: TaskState) {
        let legal = Self.legalTaskMoves.contains("\(from.rawValue)→\(to.rawValue)")
        #expect(from.canTransition(to: to) == legal)
        if legal {
            #expect(throws: Never.self) { try from.validateTransition(to: to) }
        } else {
            #expect(throws: IllegalTransition.self) { try from.validateTransition(to: to) }
        }
    }

    @Test(arguments: stepPairs)
    func stepPair(from: StepState, to: StepState) {
        let legal = Self.legalStepMoves.contains("\(from.rawValue)→\(to.rawValue)")
        #expect(from.canTransition(to: to) == legal)
        if legal {
            #expect(throws: Never.self) { try from.validateTransition(to: to) }
        } else {
            #expect(throws: IllegalTransition.self) { try from.validateTransition(to: to) }
        }
    }

    @Test func terminalStatesHaveNoWayOut() {
        for state in TaskState.allCases where state.isTerminal { #expect(TaskState.transitions[state]?.isEmpty == true) }
        for state in StepState.allCases where state.isTerminal { #expect(StepState.transitions[state]?.isEmpty == true) }
        #expect(TaskState.allCases.filter(\.isTerminal) == [.complete, .cancelled, .resolvedManually])
        #expect(StepState.allCases.filter(\.isTerminal) == [.complete, .cancelled, .resolvedManually, .skipped])
    }

    @Test func everyStateIsReachableFromTheInitialOne() {
        func reachable<S: StateMachineState>(_ type: S.Type) -> Set<S> {
            var seen: Set<S> = [S.initial]
            var frontier = [S.initial]
            while let state = frontier.popLast() {
                for next in S.transitions[state] ?? [] where seen.insert(next).inserted { frontier.append(next) }
            }
            return seen
        }
        #expect(reachable(TaskState.self) == Set(TaskState.allCases))
        #expect(reachable(StepState.self) == Set(StepState.allCases))
    }

    @Test func illegalTransitionSaysWhatIsAllowed() {
        let error = #expect(throws: IllegalTransition.self) { try StepState.complete.validateTransition(to: .enqueued) }
        #expect(error?.description == "A step cannot go from complete to enqueued: it is final.")
        let other = #expect(throws: IllegalTransition.self) { try TaskState.pending.validateTransition(to: .complete) }
        #expect(other?.description == "A task cannot go from pending to complete: from pending it can go to cancelled, in_progress.")
    }
}
