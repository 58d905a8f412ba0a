import Foundation
import OrcastraDevDB
import OrcastraPostgres

/// A PgBouncer of the test's own (Debian's `pgbouncer`) in front of one database, on a free port,
/// in the pool mode asked for. PgBouncer refuses to run as root, so as root it runs as `postgres`.
public final class LocalPgBouncer: Sendable {
    public static let executable = "/usr/sbin/pgbouncer"
    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: executable) }

    /// Clients connect here: `host=127.0.0.1 port=… dbname=… user=postgres`.
    public let url: String
    public let folder: URL
    public let poolSize: Int
    private let process: BackgroundProcess

    /// - Parameters:
    ///   - server: the database, as `TestDatabases` gives it (`host='…' port='…' dbname='…'`).
    ///   - poolSize: server connections per database and user: small, so clients really share them.
    public init(in folder: URL, server: String, poolMode: String = "transaction", poolSize: Int = 3) async throws {
        let values = ConnectionAddress.values(server)
        guard let database = values["dbname"] else { throw LocalPostgresError.failed(step: "start PgBouncer", output: "the server's conninfo names no database") }
        let host = values["host"] ?? "127.0.0.1"
        let port = values["port"] ?? "5432"
        let listenPort = try LocalPostgres.freePort()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let ini = """
            [databases]
            \(database) = host=\(host) port=\(port) dbname=\(database)

            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = \(listenPort)
            unix_socket_dir =
            auth_type = trust
            auth_file = \(folder.path)/userlist.txt
            pool_mode = \(poolMode)
            default_pool_size = \(poolSize)
            min_pool_size = 0
            reserve_pool_size = 0
            max_client_conn = 500
            server_reset_query =
            logfile = \(folder.path)/pgbouncer.log
            pidfile = \(folder.path)/pgbouncer.pid

            """
        try ini.write(to: folder.appendingPathComponent("pgbouncer.ini"), atomically: true, encoding: .utf8)
        try "\"postgres\" \"\"\n".write(to: folder.appendingPathComponent("userlist.txt"), atomically: true, encoding: .utf8)
        var command = [Self.executable, folder.appendingPathComponent("pgbouncer.ini").path]
        if geteuid() == 0, let user = getpwnam("postgres") {
            for file in [folder.path, folder.appendingPathComponent("pgbouncer.ini").path, folder.appendingPathComponent("userlist.txt").path] {
                chown(file, user.pointee.pw_uid, user.pointee.pw_gid)
            }
            command = ["/usr/sbin/runuser", "-u", "postgres", "--"] + command
        }
        process = try BackgroundProcess(command[0], Array(command.dropFirst()), environment: [:],
                                        logPath: folder.appendingPathComponent("stdout.log").path)
        self.folder = folder
        self.poolSize = poolSize
        url = "host=127.0.0.1 port=\(listenPort) dbname=\(database) user=postgres connect_timeout=5"
        let url = self.url
        let ready = await waitUntil(within: .seconds(15), every: .milliseconds(50)) {
            let connection = try await PostgresConnection.connect(url, preparedStatements: false)
            await connection.close()
            return true
        }
        guard ready else {
            await process.stop()
            let log = (try? String(contentsOf: folder.appendingPathComponent("pgbouncer.log"), encoding: .utf8)) ?? ""
            throw LocalPostgresError.failed(step: "start PgBouncer on port \(listenPort)", output: process.log + log)
        }
    }

    /// PgBouncer's own log, for failure messages.
    public var log: String {
        (try? String(contentsOf: folder.appendingPathComponent("pgbouncer.log"), encoding: .utf8)) ?? process.log
    }

    /// Stops PgBouncer and deletes its folder. As root the process started is `runuser`, which a
    /// SIGKILL would end without its child: PgBouncer itself (its child) is killed first (with
    /// SIGKILL: started through runuser, it was seen to ignore SIGTERM).
    public func stop() async {
        let children = ((try? String(contentsOfFile: "/proc/\(process.pid)/task/\(process.pid)/children", encoding: .utf8)) ?? "")
            .split(separator: " ").compactMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        for child in children { kill(child, SIGKILL) }
        for child in children { _ = await waitUntil(within: .seconds(5)) { processIsGone(child) } }
        await process.stop()
        try? FileManager.default.removeItem(at: folder)
    }
}
