#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Carries task cancellation from the async world to the supervising thread.
///
/// The flag alone would be seen only when `poll` next returns; the byte written to the wake pipe
/// makes `poll` return at once. The write end is closed under the same lock that guards the write,
/// so a late cancellation can never write into a descriptor number that has since been reused.
final class CancellationSignal: Sendable {
    private struct State {
        var cancelled = false
        var wakeWrite: Int32
        var wakeRead: Int32
    }

    private let state: Mutex<State>
    /// Polled by the supervising thread; valid until ``close()``.
    let wakeDescriptor: Int32

    init() throws(SystemCallError) {
        let ends = try FileDescriptor.makePipe()
        FileDescriptor.setNonBlocking(ends.write)
        state = Mutex(State(wakeWrite: ends.write, wakeRead: ends.read))
        wakeDescriptor = ends.read
    }

    var isCancelled: Bool { state.withLock { $0.cancelled } }

    func cancel() {
        state.withLock { state in
            guard !state.cancelled else { return }
            state.cancelled = true
            if state.wakeWrite >= 0 {
                var byte: UInt8 = 1
                _ = write(state.wakeWrite, &byte, 1)
            }
        }
    }

    /// Releases both pipe ends. Called once the command is over; later cancellations only set the flag.
    func close() {
        state.withLock { state in
            FileDescriptor.close(&state.wakeWrite)
            FileDescriptor.close(&state.wakeRead)
        }
    }
}
