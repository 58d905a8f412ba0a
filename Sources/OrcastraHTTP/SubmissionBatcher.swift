import OrcastraPostgres
import OrcastraStore
import Synchronization

/// Group commit for `POST /v1/tasks`: submissions that arrive together share one statement and
/// one commit (`orcastra.create_task_batch`), so the rate is no longer one commit per task.
///
/// At most `maximumInFlight` batches run at once. A submission that finds a slot free and nobody
/// waiting goes at once, alone, through `create_task` (no added latency when idle). Otherwise it
/// waits in line; when a batch finishes, the leader hands its slot to the oldest waiter, which
/// takes everything waiting (up to `maximumBatch`) as the next batch and runs it on its own
/// request's task — no task of the batcher's own, no extra thread hop.
///
/// Each submission gets its own outcome: its task, or its own refusal. When the batch statement
/// fails as a whole (it then made nothing: a deadlock between two batches, a cancelled request),
/// each of its submissions is sent again alone; when the connection is lost (whether it committed
/// is unknown) each gets that error, as a lone submission would.
final class SubmissionBatcher: Sendable {
    let creator: TaskCreator
    let maximumBatch: Int
    let maximumInFlight: Int

    private struct Waiting: Sendable {
        var submission: TaskCreator.CheckedSubmission
        var continuation: CheckedContinuation<Turn, Never>
    }

    /// What a waiting submission is woken with.
    private enum Turn: Sendable {
        case done(Result<TaskCreation, any Error>)
        /// Run these (the first is the one woken) as the next batch.
        case lead([Waiting])
        /// Send it alone through `create_task`.
        case alone
    }

    private struct Line: ~Copyable {
        var waiting: [Waiting] = []
        var inFlight = 0

        mutating func take(_ limit: Int) -> [Waiting] {
            let batch = Array(waiting.prefix(limit))
            waiting.removeFirst(batch.count)
            return batch
        }
    }

    private let line = Mutex(Line())

    init(creator: TaskCreator, maximumBatch: Int = TaskCreator.maximumBatch, maximumInFlight: Int) {
        precondition(maximumInFlight > 0 && (1...TaskCreator.maximumBatch).contains(maximumBatch))
        self.creator = creator
        self.maximumBatch = maximumBatch
        self.maximumInFlight = maximumInFlight
    }

    func create(_ submission: TaskCreator.CheckedSubmission) async throws -> TaskCreation {
        let maximumInFlight = self.maximumInFlight, maximumBatch = self.maximumBatch
        let leadsAlone = line.withLock { line in
            guard line.waiting.isEmpty, line.inFlight < maximumInFlight else { return false }
            line.inFlight += 1
            return true
        }
        if leadsAlone { return try await lead([], own: submission) }
        let turn = await withCheckedContinuation { (continuation: CheckedContinuation<Turn, Never>) in
            let batch: [Waiting]? = line.withLock { line in
                line.waiting.append(Waiting(submission: submission, continuation: continuation))
                // A slot freed between the look above and now: the oldest waiter leads.
                guard line.inFlight < maximumInFlight else { return nil }
                line.inFlight += 1
                return line.take(maximumBatch)
            }
            if let batch { batch[0].continuation.resume(returning: .lead(batch)) }
        }
        switch turn {
        case .done(let result): return try result.get()
        case .alone: return try await creator.create(submission)
        case .lead(let batch): return try await lead(Array(batch.dropFirst()), own: submission)
        }
    }

    /// Runs `own` with `others` as one batch, answers the others and returns its own outcome.
    private func lead(_ others: [Waiting], own: TaskCreator.CheckedSubmission) async throws -> TaskCreation {
        if others.isEmpty {
            defer { handOff() }
            return try await creator.create(own)
        }
        let result: Result<[TaskCreator.BatchOutcome], any Error>
        do {
            result = .success(try await creator.createBatch([own] + others.map(\.submission)))
        } catch {
            result = .failure(error)
        }
        // The next batch starts while this one's answers go out.
        handOff()
        switch result {
        case .success(let outcomes):
            for (waiting, outcome) in zip(others, outcomes.dropFirst()) {
                switch outcome {
                case .made(let creation): waiting.continuation.resume(returning: .done(.success(creation)))
                case .refused(let error): waiting.continuation.resume(returning: .done(.failure(error)))
                case .alone: waiting.continuation.resume(returning: .alone)
                }
            }
            switch outcomes[0] {
            case .made(let creation): return creation
            case .refused(let error): throw error
            case .alone: return try await creator.create(own)
            }
        case .failure(let error) where Self.madeNothing(error):
            for waiting in others { waiting.continuation.resume(returning: .alone) }
            return try await creator.create(own)
        case .failure(let error):
            for waiting in others { waiting.continuation.resume(returning: .done(.failure(error))) }
            throw error
        }
    }

    /// Frees this batch's slot, or hands it to the oldest waiter with everything waiting.
    private func handOff() {
        let maximumBatch = self.maximumBatch
        let next: [Waiting]? = line.withLock { line in
            guard !line.waiting.isEmpty else {
                line.inFlight -= 1
                return nil
            }
            return line.take(maximumBatch)
        }
        if let next { next[0].continuation.resume(returning: .lead(next)) }
    }

    /// Whether a failed batch certainly made nothing: the server refused the statement (its
    /// transaction rolled back whole), or it was never sent.
    private static func madeNothing(_ error: any Error) -> Bool {
        if error is CancellationError { return true }
        if let error = error as? PostgresError, case .server = error { return true }
        return false
    }
}
