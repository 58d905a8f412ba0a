#if canImport(Glibc)
import Glibc
#endif

/// A failed system call, described as one sentence.
struct SystemCallError: Error, CustomStringConvertible {
    let call: String
    let code: Int32

    init(_ call: String, code: Int32 = errno) {
        self.call = call
        self.code = code
    }

    var description: String { "\(call) failed: \(String(cString: strerror(code)))" }
}

/// Small wrappers over descriptor system calls, retrying `EINTR` where it matters.
enum FileDescriptor {
    /// A close-on-exec pipe whose ends are never 0, 1 or 2.
    ///
    /// If the process had closed a standard descriptor, a pipe end could land on it and the child's
    /// `dup2` onto 0/1/2 would clobber another pipe end; moving such ends above 2 rules that out.
    static func makePipe() throws(SystemCallError) -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        if let pipe2 = GNUExtensions.pipe2 {
            guard pipe2(&ends, O_CLOEXEC) == 0 else { throw SystemCallError("pipe2") }
        } else {
            guard pipe(&ends) == 0 else { throw SystemCallError("pipe") }
            for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        }
        for index in ends.indices where ends[index] <= STDERR_FILENO {
            let moved = fcntl(ends[index], F_DUPFD_CLOEXEC, STDERR_FILENO + 1)
            let code = errno
            Glibc.close(ends[index])
            ends[index] = moved
            if moved < 0 {
                for end in ends where end >= 0 { Glibc.close(end) }
                throw SystemCallError("fcntl(F_DUPFD_CLOEXEC)", code: code)
            }
        }
        return (ends[0], ends[1])
    }

    static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
    }

    /// Closes `fd` if it is open and marks it closed. `EINTR` is not retried: on Linux the
    /// descriptor is released even then, and retrying could close a descriptor reused by another thread.
    static func close(_ fd: inout Int32) {
        guard fd >= 0 else { return }
        Glibc.close(fd)
        fd = -1
    }
}
