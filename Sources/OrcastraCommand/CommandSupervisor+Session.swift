#if canImport(Glibc)
import Glibc
#endif

extension CommandSupervisor {
    /// The parent's ends of the three pipes and what has passed through them.
    struct Session: ~Copyable {
        private(set) var stdin: Int32
        private(set) var stdout: Int32
        private(set) var stderr: Int32
        let input: [UInt8]
        private var written = 0
        var output: HeadCapture
        var error: TailCapture
        private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 1)

        init(stdin: Int32, stdout: Int32, stderr: Int32, input: [UInt8], output: HeadCapture, error: TailCapture) {
            self.stdin = stdin
            self.stdout = stdout
            self.stderr = stderr
            self.input = input
            self.output = output
            self.error = error
            // Non-blocking everywhere: poll says "ready", but a write larger than the free pipe space
            // would otherwise block, and that is exactly the deadlock this loop exists to avoid.
            FileDescriptor.setNonBlocking(stdin)
            FileDescriptor.setNonBlocking(stdout)
            FileDescriptor.setNonBlocking(stderr)
            if input.isEmpty { FileDescriptor.close(&self.stdin) }
        }

        deinit { buffer.deallocate() }

        var outputOpen: Bool { stdout >= 0 || stderr >= 0 }

        /// Waits up to `timeout` ms for any descriptor (or the wake pipe), then services what is ready.
        mutating func pump(timeout: Int32, wake: Int32) {
            var descriptors: [pollfd] = []
            if stdin >= 0 { descriptors.append(pollfd(fd: stdin, events: Int16(POLLOUT), revents: 0)) }
            if stdout >= 0 { descriptors.append(pollfd(fd: stdout, events: Int16(POLLIN), revents: 0)) }
            if stderr >= 0 { descriptors.append(pollfd(fd: stderr, events: Int16(POLLIN), revents: 0)) }
            if wake >= 0 { descriptors.append(pollfd(fd: wake, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&descriptors, nfds_t(descriptors.count), timeout)
            guard ready > 0 else { return }
            for descriptor in descriptors where descriptor.revents != 0 {
                if descriptor.fd == stdin {
                    writeInput()
                } else if descriptor.fd == stdout {
                    readOutput()
                } else if descriptor.fd == stderr {
                    readError()
                }
                // The wake pipe needs no servicing: the caller checks the cancellation flag next.
            }
        }

        /// Reads whatever is left until both pipes reach end-of-file or `deadline` passes.
        mutating func drain(until deadline: ContinuousClock.Instant, clock: ContinuousClock) {
            while outputOpen {
                let now = clock.now
                guard now < deadline else { return }
                let (seconds, attoseconds) = (deadline - now).components
                let wait = Int32(seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
                pump(timeout: wait, wake: -1)
            }
        }

        mutating func closeInput() {
            FileDescriptor.close(&stdin)
        }

        mutating func closeAll() {
            FileDescriptor.close(&stdin)
            FileDescriptor.close(&stdout)
            FileDescriptor.close(&stderr)
        }

        private mutating func writeInput() {
            while written < input.count {
                let count = input.withUnsafeBytes { bytes in
                    write(stdin, bytes.baseAddress! + written, bytes.count - written)
                }
                if count > 0 {
                    written += count
                } else if count < 0 && errno == EINTR {
                    continue
                } else if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                    return
                } else {
                    // EPIPE: the child closed stdin without reading it all. Not an error for us.
                    break
                }
            }
            closeInput()
        }

        private mutating func readOutput() {
            while let chunk = Self.readChunk(&stdout, into: buffer) { output.append(chunk) }
        }

        private mutating func readError() {
            while let chunk = Self.readChunk(&stderr, into: buffer) { error.append(chunk) }
        }

        /// The next chunk, or `nil` when nothing is available right now. Closes `fd` at end-of-file.
        private static func readChunk(_ fd: inout Int32, into buffer: UnsafeMutableRawBufferPointer) -> UnsafeRawBufferPointer? {
            while fd >= 0 {
                let count = read(fd, buffer.baseAddress, buffer.count)
                if count > 0 { return UnsafeRawBufferPointer(rebasing: buffer[..<count]) }
                if count < 0 && errno == EINTR { continue }
                if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return nil }
                FileDescriptor.close(&fd)
            }
            return nil
        }
    }
}
