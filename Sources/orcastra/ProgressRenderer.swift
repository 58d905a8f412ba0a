import Foundation
import OrcastraClient
import Synchronization

/// Live progress of a watched task on standard error.
///
/// On a terminal it is one line redrawn in place (`\r`), a bar plus what runs now. Anywhere else
/// (a log, a CI job) it prints a plain line only when that line changes, so logs stay short.
/// Standard output stays free for the task id and the final summary that scripts read.
final class ProgressRenderer: Sendable {
    private let interactive: Bool
    private let state = Mutex<(lastLine: String, drawn: Bool)>(("", false))

    init(interactive: Bool) {
        self.interactive = interactive
    }

    func show(_ detail: TaskDetail) {
        let line = Self.describe(detail)
        let output: String? = state.withLock { state in
            guard line != state.lastLine else { return nil }
            state.lastLine = line
            if interactive {
                state.drawn = true
                // Cut to the terminal's width: a wrapped line cannot be redrawn with \r.
                let full = Self.bar(done: detail.finishedStepCount, of: detail.steps.count) + " " + line
                let width = Self.terminalWidth()
                let shown = full.count < width ? full : String(full.prefix(max(10, width - 2))) + "…"
                return "\r" + shown + "\u{1B}[K"
            }
            return "\(Date().formatted(Date.ISO8601FormatStyle().time(includingFractionalSeconds: false))) \(line)\n"
        }
        if let output { CLI.writeError(output) }
    }

    /// Ends the redrawn line so what follows starts on a fresh one.
    func finish() {
        let drawn = state.withLock { $0.drawn }
        if interactive && drawn { CLI.writeError("\n") }
    }

    /// `in_progress: 2/4 steps done; running: b, c`.
    static func describe(_ detail: TaskDetail) -> String {
        var text = "\(detail.state.rawValue): \(detail.finishedStepCount)/\(detail.steps.count) steps done"
        let running = detail.runningSteps.map(\.name)
        let queued = detail.steps.filter { $0.state == .enqueued }.map(\.name)
        let retrying = detail.steps.filter { $0.state == .waitingForRetry }.map(\.name)
        let failed = detail.failedSteps.map(\.name)
        if !running.isEmpty { text += "; running: \(names(running))" }
        if !queued.isEmpty { text += "; queued: \(names(queued))" }
        if !retrying.isEmpty { text += "; waiting to retry: \(names(retrying))" }
        if !failed.isEmpty { text += "; failed: \(names(failed))" }
        return text
    }

    /// At most three names, then how many more: a 30-way fan-out stays a short line.
    static func names(_ names: [String]) -> String {
        guard names.count > 3 else { return names.joined(separator: ", ") }
        return names.prefix(3).joined(separator: ", ") + " and \(names.count - 3) more"
    }

    static func terminalWidth() -> Int {
        var size = winsize()
        guard ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }

    static func bar(done: Int, of total: Int, width: Int = 20) -> String {
        let filled = total == 0 ? 0 : min(width, done * width / total)
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]"
    }
}
