import Foundation
import Synchronization

/// Polls `condition` every `interval` until it holds or `limit` passes, and returns whether it held.
/// Errors count as "not yet" (a database that is restarting, a row not there yet). Tests assert on
/// the result: a wait that gives up must fail the test, never fall through as if it had succeeded.
@discardableResult
public func waitUntil(within limit: Duration, every interval: Duration = .milliseconds(25),
                      _ condition: () async throws -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if (try? await condition()) == true { return true }
        if Task.isCancelled { return false }
        try? await Task.sleep(for: interval)
    }
    return (try? await condition()) == true
}

/// Whether the process `pid` no longer runs (gone, or a zombie nobody has reaped yet).
public func processIsGone(_ pid: Int32) -> Bool {
    if kill(pid, 0) != 0 { return errno == ESRCH }
    #if os(Linux)
    if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
       let close = stat.lastIndex(of: ")") {
        // The state letter follows "pid (name) ".
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first == "Z"
    }
    #endif
    return false
}

/// Reads what an async sequence yields on a task of its own, so a test can wait for the next
/// element with a deadline instead of hanging on `for await` when it never comes.
public final class AsyncRecorder<Element: Sendable>: Sendable {
    private final class Storage: Sendable {
        let elements = Mutex<(received: [Element], consumed: Int)>(([], 0))
    }

    private let storage = Storage()
    private let reader: Task<Void, Never>

    public init<S: AsyncSequence & Sendable>(_ sequence: S) where S.Element == Element, S.Failure == Never {
        let storage = self.storage
        reader = Task {
            for await element in sequence { storage.elements.withLock { $0.received.append(element) } }
        }
    }

    deinit { reader.cancel() }

    /// The next element not returned before, or nil if none arrives within `limit`.
    public func next(within limit: Duration) async -> Element? {
        let deadline = ContinuousClock.now + limit
        while true {
            let element = storage.elements.withLock { state -> Element? in
                guard state.consumed < state.received.count else { return nil }
                state.consumed += 1
                return state.received[state.consumed - 1]
            }
            if let element { return element }
            if ContinuousClock.now >= deadline || Task.isCancelled { return nil }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Stops reading.
    public func cancel() { reader.cancel() }
}

/// A shell fragment for a `command` step that records its own process id and that of a long
/// `sleep` child in `file`, then waits for the child: a test can later check both were killed.
public func recordingPIDs(in file: String, sleep seconds: Int) -> String {
    "echo $$ >> \(file); sleep \(seconds) & echo $! >> \(file); wait $!"
}

/// The process ids a `recordingPIDs` command wrote to `file`.
public func recordedPIDs(in file: String) -> [Int32] {
    ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(whereSeparator: \.isNewline).compactMap { Int32($0) }
}
