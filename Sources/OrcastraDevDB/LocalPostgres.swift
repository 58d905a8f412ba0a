import Foundation

/// A PostgreSQL cluster of our own, started from the system's binaries: the embedded default used
/// when no database is configured, by `orcastra dev-db`, `orcastra demo` and the test harness.
///
/// It listens on 127.0.0.1 and on a unix socket, on a free port chosen at `initdb` time. When run as
/// root it runs the server as the `postgres` user, because `initdb` and `postgres` refuse root.
public struct LocalPostgres: Sendable {
    public struct Options: Sendable {
        /// Turns off fsync and synchronous commit: much faster, and safe only for throwaway data.
        public var durable: Bool
        public var maxConnections: Int
        /// More `postgresql.conf` lines, e.g. `track_commit_timestamp = on` for a benchmark.
        public var settings: [String]
        public init(durable: Bool = true, maxConnections: Int = 200, settings: [String] = []) {
            self.durable = durable
            self.maxConnections = maxConnections
            self.settings = settings
        }
    }

    public let dataDirectory: URL
    public let options: Options
    public let binaries: URL

    /// Finds the server binaries; throws with the package to install when there are none.
    public init(dataDirectory: URL, options: Options = Options()) throws {
        self.dataDirectory = dataDirectory.standardizedFileURL
        self.options = options
        self.binaries = try Self.findBinaries()
    }

    // MARK: - Lifecycle

    /// Creates the cluster if needed and starts it if it is not running; returns its connection URL.
    @discardableResult
    public func start() async throws -> String {
        try await onDedicatedThread { try startBlocking() }
    }

    /// Stops the server if it runs ("fast": sessions are disconnected, nothing is lost).
    public func stop() async throws {
        try await onDedicatedThread { try stopBlocking() }
    }

    /// Stops the server at once, as a crash would (for fault tests).
    public func kill() async throws {
        try await onDedicatedThread { try killBlocking() }
    }

    /// Stops the server and deletes its data directory.
    public func destroy() async throws {
        try await onDedicatedThread { try destroyBlocking() }
    }

    // The blocking forms, for callers on a thread of their own (an atexit handler, a CLI's main).

    public func startBlocking() throws -> String {
        if !isInitialized { try initialize() }
        if let running = try status() { return running.url }
        try ensureSocketDirectory()
        let log = dataDirectory.appendingPathComponent("server.log").path
        try run(binary: "pg_ctl", ["-D", dataDirectory.path, "-l", log, "-w", "-t", "300", "start"], what: "start PostgreSQL (its log: \(log))")
        guard let running = try status() else {
            throw LocalPostgresError.failed(step: "start PostgreSQL", output: "pg_ctl reported success but the server is not running; see \(log)")
        }
        return running.url
    }

    public func stopBlocking() throws {
        guard try status() != nil else { return }
        try run(binary: "pg_ctl", ["-D", dataDirectory.path, "-m", "fast", "-w", "stop"], what: "stop PostgreSQL")
    }

    public func killBlocking() throws {
        guard try status() != nil else { return }
        try run(binary: "pg_ctl", ["-D", dataDirectory.path, "-m", "immediate", "-w", "stop"], what: "stop PostgreSQL")
    }

    public func destroyBlocking() throws {
        try? stopBlocking()
        if FileManager.default.fileExists(atPath: dataDirectory.path) {
            try FileManager.default.removeItem(at: dataDirectory)
        }
    }

    public struct Running: Sendable, Equatable {
        public var pid: Int
        public var port: Int
        public var socketDirectory: String
        /// A libpq URL for the `postgres` superuser over the unix socket.
        public var url: String
    }

    /// The running server read from `postmaster.pid`, or nil when none runs.
    public func status() throws -> Running? {
        let pidFile = dataDirectory.appendingPathComponent("postmaster.pid")
        guard let text = try? String(contentsOf: pidFile, encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count >= 5, let pid = Int32(lines[0].trimmingCharacters(in: .whitespaces)),
              let port = Int(lines[3].trimmingCharacters(in: .whitespaces))
        else { return nil }
        // A stale pid file (after a crash or reboot) names a process that is gone.
        guard Foundation.kill(pid, 0) == 0 || errno == EPERM else { return nil }
        let socketDirectory = lines[4].trimmingCharacters(in: .whitespaces)
        let host = socketDirectory.isEmpty ? "127.0.0.1" : socketDirectory
        let encodedHost = host.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? host
        return Running(pid: Int(pid), port: port, socketDirectory: socketDirectory,
                       url: "postgresql://postgres@/postgres?host=\(encodedHost)&port=\(port)")
    }

    public var isInitialized: Bool {
        FileManager.default.fileExists(atPath: dataDirectory.appendingPathComponent("PG_VERSION").path)
    }

    // MARK: - initdb

    private func initialize() throws {
        let manager = FileManager.default
        try manager.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        if runAsPostgresUser { try handToPostgresUser(dataDirectory) }
        try run(binary: "initdb", ["-D", dataDirectory.path, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-instructions"],
                what: "create a PostgreSQL cluster in \(dataDirectory.path)")
        let port = try Self.freePort()
        var settings = [
            "port = \(port)",
            "listen_addresses = '127.0.0.1'",
            "unix_socket_directories = '\(socketDirectory.path)'",
            "max_connections = \(options.maxConnections)",
            "shared_buffers = 256MB",
            "log_min_messages = warning",
            // Queue tables churn: every state change leaves a dead tuple. Look for vacuum work
            // every 5 s instead of every minute (docs/benchmarks.md shows the difference).
            "autovacuum_naptime = 5s",
            "log_line_prefix = '%m [%p] '",
        ]
        if !options.durable {
            settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        }
        settings += options.settings
        let config = dataDirectory.appendingPathComponent("postgresql.conf")
        let handle = try FileHandle(forWritingTo: config)
        handle.seekToEndOfFile()
        handle.write(Data(("\n# Added by Orcastra\n" + settings.joined(separator: "\n") + "\n").utf8))
        try handle.close()
    }

    /// The socket lives in the data directory unless its path would pass the 107-byte limit of
    /// unix socket addresses, in which case a short folder under /tmp is used.
    var socketDirectory: URL {
        if dataDirectory.path.utf8.count < 80 { return dataDirectory }
        var hash: UInt64 = 14_695_981_039_346_656_037
        for byte in dataDirectory.path.utf8 { hash = (hash ^ UInt64(byte)) &* 1_099_511_628_211 }
        return URL(fileURLWithPath: "/tmp/orcastra-\(String(hash, radix: 36))")
    }

    private func ensureSocketDirectory() throws {
        let directory = socketDirectory
        guard directory != dataDirectory else { return }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        if runAsPostgresUser { try handToPostgresUser(directory) }
    }

    // MARK: - Processes

    var runAsPostgresUser: Bool { geteuid() == 0 }

    func handToPostgresUser(_ directory: URL) throws {
        guard let user = getpwnam("postgres") else {
            throw LocalPostgresError.noPostgresUser
        }
        guard chown(directory.path, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else {
            throw LocalPostgresError.failed(step: "give \(directory.path) to the postgres user", output: String(cString: strerror(errno)))
        }
        chmod(directory.path, 0o700)
        // The server must be able to reach its folder from the root of the file system.
        if !Self.canTraverse(directory.deletingLastPathComponent(), uid: user.pointee.pw_uid) {
            throw LocalPostgresError.unreachable(directory.path)
        }
    }

    /// Whether every folder above `directory` lets "others" (or the user) pass through.
    static func canTraverse(_ directory: URL, uid: uid_t) -> Bool {
        var current = directory.standardizedFileURL
        while true {
            var info = stat()
            guard stat(current.path, &info) == 0 else { return false }
            let others = info.st_mode & S_IXOTH != 0
            let owner = info.st_uid == uid && info.st_mode & S_IXUSR != 0
            if !others && !owner { return false }
            if current.path == "/" { return true }
            current = current.deletingLastPathComponent()
        }
    }

    func run(binary: String, _ arguments: [String], what: String) throws {
        let executable = path(of: binary)
        let outcome = runAsPostgresUser
            ? try ProcessRunner.run("/usr/sbin/runuser", ["-u", "postgres", "--", executable] + arguments)
            : try ProcessRunner.run(executable, arguments)
        guard outcome.status == 0 else {
            throw LocalPostgresError.failed(step: what, output: outcome.output)
        }
    }

    // MARK: - Discovery

    /// A server program's path: beside `initdb`, or beside what `initdb` links to (a PATH folder
    /// may link only initdb, pg_ctl and postgres, not pg_basebackup).
    func path(of binary: String) -> String {
        let direct = binaries.appendingPathComponent(binary)
        if FileManager.default.isExecutableFile(atPath: direct.path) { return direct.path }
        let linked = binaries.appendingPathComponent("initdb").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent(binary)
        return FileManager.default.isExecutableFile(atPath: linked.path) ? linked.path : direct.path
    }

    /// `initdb` on PATH, else the newest `/usr/lib/postgresql/*/bin`.
    public static func findBinaries() throws -> URL {
        let manager = FileManager.default
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for directory in path.split(separator: ":") {
            let folder = URL(fileURLWithPath: String(directory))
            if manager.isExecutableFile(atPath: folder.appendingPathComponent("initdb").path),
               manager.isExecutableFile(atPath: folder.appendingPathComponent("pg_ctl").path) {
                return folder
            }
        }
        let root = "/usr/lib/postgresql"
        let versions = (try? manager.contentsOfDirectory(atPath: root)) ?? []
        let newest = versions.compactMap { name -> (Int, String)? in Int(name).map { ($0, name) } }.max { $0.0 < $1.0 }
        if let newest {
            let folder = URL(fileURLWithPath: "\(root)/\(newest.1)/bin")
            if manager.isExecutableFile(atPath: folder.appendingPathComponent("initdb").path) { return folder }
        }
        throw LocalPostgresError.binariesNotFound
    }

    /// Asks the kernel for a free TCP port on loopback.
    public static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw LocalPostgresError.failed(step: "find a free port", output: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw LocalPostgresError.failed(step: "find a free port", output: String(cString: strerror(errno))) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

public enum LocalPostgresError: Error, CustomStringConvertible {
    case binariesNotFound
    case noPostgresUser
    case unreachable(String)
    case failed(step: String, output: String)

    public var description: String {
        switch self {
        case .binariesNotFound:
            "No PostgreSQL server binaries found (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin. Install them (Debian/Ubuntu: apt-get install postgresql), or point Orcastra at a server with --database-url."
        case .noPostgresUser:
            "Running as root, Orcastra starts PostgreSQL as the 'postgres' user, which does not exist. Install the postgresql package (it creates the user) or run as a normal user."
        case .unreachable(let path):
            "The postgres user cannot reach \(path): a folder above it is closed to other users. Set ORCASTRA_DEV_DB_DIR to a folder under /tmp or /var/tmp, or pass --database-url."
        case .failed(let step, let output):
            "Could not \(step): \(output.trimmingCharacters(in: .whitespacesAndNewlines))"
        }
    }
}
