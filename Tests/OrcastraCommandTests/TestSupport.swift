#if canImport(Glibc)
import Glibc
#endif
@testable import OrcastraCommand

func invocation(
    _ argv: [String],
    input: [UInt8] = [],
    timeout: Duration = .seconds(20),
    outputLimit: Int = 1 << 20,
    errorLimit: Int = 64 << 10
) -> CommandInvocation {
    CommandInvocation(
        argv: argv,
        environment: CommandInvocation.parentEnvironment(),
        standardInput: input,
        timeout: timeout,
        outputLimit: outputLimit,
        errorLimit: errorLimit
    )
}

func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// Deterministic, non-repeating-looking bytes, so a dropped or reordered chunk cannot go unnoticed.
func patternBytes(count: Int) -> [UInt8] {
    var state: UInt32 = 2_463_534_242
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 17
        state ^= state << 5
        return UInt8(truncatingIfNeeded: state)
    }
}

func readWholeFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var result: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = read(fd, &chunk, chunk.count)
        if count <= 0 { break }
        result += chunk[..<count]
    }
    return result
}

/// `(pid, ppid, state)` from `/proc/<pid>/stat`, or `nil` when the process is gone.
func processStatus(_ pid: pid_t) -> (ppid: pid_t, state: Character)? {
    guard let bytes = readWholeFile("/proc/\(pid)/stat") else { return nil }
    let line = text(bytes)
    guard let close = line.lastIndex(of: ")") else { return nil }
    let fields = line[line.index(after: close)...].split(separator: " ")
    guard fields.count > 2, let state = fields[0].first, let ppid = pid_t(fields[1]) else { return nil }
    return (ppid, state)
}

/// Alive means present and not a zombie: a killed grandchild is reparented to init, which may
/// reap it a little later, and `kill(pid, 0)` succeeds on zombies.
func isAlive(_ pid: pid_t) -> Bool {
    guard let status = processStatus(pid) else { return false }
    return status.state != "Z" && status.state != "X"
}

/// Gives the kernel a moment to finish a SIGKILL before declaring the process a survivor.
func becomesDead(_ pid: pid_t, within limit: Duration = .seconds(1)) async -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + limit
    while clock.now < deadline {
        if !isAlive(pid) { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return !isAlive(pid)
}

func directoryEntries(_ path: String) -> [String] {
    guard let directory = opendir(path) else { return [] }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

/// Open pipe descriptors: the runner's own kind. Sockets and files that other suites open while
/// this one runs (database connections, logs) are not counted.
func openDescriptorCount() -> Int {
    directoryEntries("/proc/self/fd").filter { entry in
        var buffer = [CChar](repeating: 0, count: 256)
        let length = readlink("/proc/self/fd/\(entry)", &buffer, 255)
        guard length > 0 else { return false }
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self).hasPrefix("pipe:")
    }.count
}

func zombieChildCount() -> Int {
    let me = getpid()
    return directoryEntries("/proc").compactMap { pid_t($0) }.filter { pid in
        guard let status = processStatus(pid) else { return false }
        return status.ppid == me && status.state == "Z"
    }.count
}

func seconds(_ duration: Duration) -> Double {
    let (whole, fraction) = duration.components
    return Double(whole) + Double(fraction) / 1e18
}
