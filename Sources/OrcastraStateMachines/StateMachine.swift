/// What the task and step machines share: a closed set of states and a table of legal moves.
///
/// The database is the source of truth for both machines (docs/state-machines.md); these Swift
/// mirrors let code check a move before sending it and switch exhaustively over states.
public protocol StateMachineState: RawRepresentable<String>, CaseIterable, Hashable, Sendable {
    static var initial: Self { get }
    static var transitions: [Self: Set<Self>] { get }
    var isTerminal: Bool { get }
}

extension StateMachineState {
    /// Whether moving from `self` to `next` is legal. Staying in place is not a transition.
    public func canTransition(to next: Self) -> Bool {
        Self.transitions[self]?.contains(next) ?? false
    }

    /// Checks a move, throwing an error that names both states and the legal alternatives.
    public func validateTransition(to next: Self) throws(IllegalTransition) {
        guard canTransition(to: next) else {
            let legal = (Self.transitions[self] ?? []).map(\.rawValue).sorted()
            throw IllegalTransition(machine: String(describing: Self.self), from: rawValue, to: next.rawValue, legal: legal)
        }
    }

    /// Every legal (from, to) pair, sorted, e.g. to compare with the database's table.
    public static var legalPairs: [(from: Self, to: Self)] {
        allCases.flatMap { from in
            (transitions[from] ?? []).map { (from: from, to: $0) }
        }.sorted { ($0.from.rawValue, $0.to.rawValue) < ($1.from.rawValue, $1.to.rawValue) }
    }
}

public struct IllegalTransition: Error, Sendable, Equatable, CustomStringConvertible {
    public var machine: String
    public var from: String
    public var to: String
    public var legal: [String]

    public var description: String {
        let options = legal.isEmpty ? "it is final" : "from \(from) it can go to \(legal.joined(separator: ", "))"
        return "A \(machine == "TaskState" ? "task" : "step") cannot go from \(from) to \(to): \(options)."
    }
}
