import Foundation

// A hot standby of a local cluster, for failover tests: streaming replication on this machine.
extension LocalPostgres {
    /// Clones this running cluster into `directory` with `pg_basebackup -R` (which writes
    /// `standby.signal` and `primary_conninfo`), gives the copy a port and socket of its own, starts
    /// it and returns it: a hot standby streaming from this cluster, read-only until promoted.
    ///
    /// Settings made later on the primary with `ALTER SYSTEM` (e.g. `synchronous_standby_names`)
    /// are not copied, so a promoted standby never waits for a standby of its own.
    public func startStandby(in directory: URL, settings: [String] = []) throws -> LocalPostgres {
        guard let primary = try status() else {
            throw LocalPostgresError.failed(step: "clone \(dataDirectory.path) into a standby", output: "the primary does not run")
        }
        let standby = try LocalPostgres(dataDirectory: directory, options: options)
        // pg_basebackup fills an empty folder that the user it runs as owns.
        try FileManager.default.createDirectory(at: standby.dataDirectory, withIntermediateDirectories: true)
        if runAsPostgresUser { try handToPostgresUser(standby.dataDirectory) }
        try run(binary: "pg_basebackup", ["-D", standby.dataDirectory.path, "-R", "-X", "stream", "-c", "fast",
                                          "-h", primary.socketDirectory.isEmpty ? "127.0.0.1" : primary.socketDirectory,
                                          "-p", String(primary.port), "-U", "postgres"],
                what: "clone \(dataDirectory.path) into a standby in \(standby.dataDirectory.path)")
        // The copy carries the primary's port and socket folder: later lines win.
        let lines = ["port = \(try Self.freePort())",
                     "unix_socket_directories = '\(standby.socketDirectory.path)'"] + settings
        let config = standby.dataDirectory.appendingPathComponent("postgresql.conf")
        let handle = try FileHandle(forWritingTo: config)
        handle.seekToEndOfFile()
        handle.write(Data(("\n# Added by Orcastra for a standby\n" + lines.joined(separator: "\n") + "\n").utf8))
        try handle.close()
        _ = try standby.startBlocking()
        return standby
    }

    /// Promotes a standby to primary and waits until it takes writes (`pg_ctl promote -w`).
    public func promoteBlocking() throws {
        try run(binary: "pg_ctl", ["-D", dataDirectory.path, "-w", "-t", "60", "promote"], what: "promote the standby in \(dataDirectory.path)")
    }

    /// Cuts a standby off its primary (an empty `primary_conninfo`, reloaded): it keeps what it has
    /// replayed and receives nothing more — what a standby lagging behind at the moment of a crash
    /// holds. For tests of what asynchronous replication can lose.
    public func detachStandbyBlocking() throws {
        let auto = dataDirectory.appendingPathComponent("postgresql.auto.conf")
        let handle = try FileHandle(forWritingTo: auto)
        handle.seekToEndOfFile()
        handle.write(Data("primary_conninfo = ''\n".utf8))
        try handle.close()
        try run(binary: "pg_ctl", ["-D", dataDirectory.path, "reload"], what: "reload the standby in \(dataDirectory.path)")
    }
}
