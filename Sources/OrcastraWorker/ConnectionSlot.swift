import Logging
import OrcastraPostgres

/// One connection that is reopened when it breaks, for long-running loops.
actor ConnectionSlot {
    private let conninfo: String
    private let logger: Logger
    private var connection: PostgresConnection?

    init(conninfo: String, logger: Logger) {
        self.conninfo = conninfo
        self.logger = logger
    }

    /// The open connection, or a new one if there is none or it broke.
    func get() async throws -> PostgresConnection {
        if let connection, !connection.isBroken { return connection }
        if let connection { await connection.close() }
        connection = nil
        let fresh = try await PostgresConnection.connect(conninfo, logger: logger)
        connection = fresh
        return fresh
    }

    /// The open connection if there is a healthy one; never connects (for a last statement on
    /// the way out, which must not wait on a database that went away).
    func current() -> PostgresConnection? {
        guard let connection, !connection.isBroken else { return nil }
        return connection
    }

    func close() async {
        await connection?.close()
        connection = nil
    }
}

/// Doubles a delay after each failure, up to a ceiling; resets on success.
struct Backoff {
    var initial: Duration = .milliseconds(100)
    var maximum: Duration = .seconds(5)
    private(set) var current: Duration = .milliseconds(100)

    mutating func next() -> Duration {
        defer { current = min(current * 2, maximum) }
        return current
    }

    mutating func reset() { current = initial }
}
