import CLibPQ
import Foundation
import Logging
import Synchronization

/// LISTEN on a dedicated connection, delivered as an `AsyncSequence` of events.
///
/// Notifications only wake their consumer; they never carry state. The connection runs on its own
/// thread. When it is lost the listener reconnects with backoff, LISTENs again and yields
/// `.listening(reconnected: true)`: the consumer must then catch up by query, because notifications
/// sent meanwhile are gone. The first event is always `.listening(reconnected: false)`, so a consumer
/// that queries after it cannot miss work.
public final class PostgresListener: AsyncSequence, Sendable {
    public enum Event: Sendable, Equatable {
        /// LISTEN is in force. After `reconnected: true`, look for work that arrived while disconnected.
        case listening(reconnected: Bool)
        case notification(channel: String, payload: String)
    }

    public typealias Element = Event

    private let stream: AsyncStream<Event>
    private let control: Control

    /// - Parameters:
    ///   - channels: channel names; each is quoted as an identifier.
    ///   - backoff: the first and the largest delay between reconnect attempts.
    public init(
        conninfo: String,
        channels: [String],
        backoff: (initial: Duration, maximum: Duration) = (.milliseconds(100), .seconds(5)),
        logger: Logger = Logger(label: "orcastra.listener")
    ) {
        let control = Control()
        self.control = control
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(10_000))
        self.stream = stream
        continuation.onTermination = { _ in control.stop() }
        let loop = ListenLoop(conninfo: conninfo, channels: channels, backoff: backoff, logger: logger,
                              control: control, continuation: continuation)
        let thread = Thread { loop.run() }
        thread.name = "orcastra-listen"
        thread.start()
    }

    /// The connection string to LISTEN with for a process whose statements use `conninfo`:
    /// `ORCASTRA_LISTEN_DATABASE_URL` when set, else `conninfo` itself. Behind PgBouncer in
    /// transaction mode LISTEN must go straight to PostgreSQL (or through a session-mode pool): a
    /// transaction-mode pool hands the session to another client after each statement, and the
    /// LISTEN with it.
    public static func conninfo(forDatabase conninfo: String) -> String {
        if let direct = ProcessInfo.processInfo.environment["ORCASTRA_LISTEN_DATABASE_URL"], !direct.isEmpty { return direct }
        return conninfo
    }

    /// Stops listening and closes the connection; the sequence ends.
    public func stop() { control.stop() }

    public func makeAsyncIterator() -> AsyncStream<Event>.Iterator { stream.makeAsyncIterator() }

    /// The stop flag, plus a pipe that wakes the listener's poll at once when it is set: the
    /// listener sleeps in poll() with no timeout, so an idle process does not wake at all.
    final class Control: Sendable {
        private let stopped = Atomic<Bool>(false)
        /// The pipe's read end (polled) and write end (written once by stop()); -1 if none.
        let wakeup: Int32
        private let signal: Int32

        init() {
            var ends: [Int32] = [-1, -1]
            if pipe(&ends) == 0 {
                for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
                _ = fcntl(ends[1], F_SETFL, fcntl(ends[1], F_GETFL) | O_NONBLOCK)
            }
            wakeup = ends[0]
            signal = ends[1]
        }

        func stop() {
            guard !stopped.exchange(true, ordering: .acquiringAndReleasing), signal >= 0 else { return }
            var byte: UInt8 = 1
            _ = write(signal, &byte, 1)
        }

        var isStopped: Bool { stopped.load(ordering: .acquiring) }

        deinit {
            if wakeup >= 0 { close(wakeup) }
            if signal >= 0 { close(signal) }
        }
    }
}

/// The listener's thread: connect, LISTEN, wait on the socket, drain notifications, repeat.
private final class ListenLoop: @unchecked Sendable {
    let conninfo: String
    let channels: [String]
    let backoff: (initial: Duration, maximum: Duration)
    let logger: Logger
    let control: PostgresListener.Control
    let continuation: AsyncStream<PostgresListener.Event>.Continuation

    init(conninfo: String, channels: [String], backoff: (initial: Duration, maximum: Duration), logger: Logger,
         control: PostgresListener.Control, continuation: AsyncStream<PostgresListener.Event>.Continuation) {
        self.conninfo = conninfo
        self.channels = channels
        self.backoff = backoff
        self.logger = logger
        self.control = control
        self.continuation = continuation
    }

    func run() {
        var connectedBefore = false
        var delay = backoff.initial
        while !control.isStopped {
            guard let connection = connect() else {
                sleep(delay)
                delay = min(delay * 2, backoff.maximum)
                continue
            }
            delay = backoff.initial
            continuation.yield(.listening(reconnected: connectedBefore))
            if connectedBefore {
                logger.info("listener reconnected", metadata: ["address": "\(ConnectionAddress.describe(conninfo))"])
            }
            connectedBefore = true
            waitForNotifications(connection)
            PQfinish(connection)
        }
        continuation.finish()
    }

    /// Opens the connection and LISTENs on every channel, or returns nil after logging why not.
    private func connect() -> OpaquePointer? {
        guard let connection = PQconnectdb(conninfo) else { return nil }
        guard PQstatus(connection) == CONNECTION_OK else {
            logger.warning("listener cannot connect; retrying", metadata: [
                "address": "\(ConnectionAddress.describe(conninfo))",
                "error": "\(PostgresConnection.lastError(connection))",
            ])
            PQfinish(connection)
            return nil
        }
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        let statements = channels.map { "LISTEN \(Self.quoteIdentifier($0))" }.joined(separator: "; ")
        if !statements.isEmpty {
            let result = PQexec(connection, statements)
            let ok = result.map { PQresultStatus($0) == PGRES_COMMAND_OK } ?? false
            if let result { PQclear(result) }
            guard ok else {
                logger.warning("LISTEN failed; retrying", metadata: ["error": "\(PostgresConnection.lastError(connection))"])
                PQfinish(connection)
                return nil
            }
        }
        return connection
    }

    /// Waits on the socket, and on the stop eventfd (so an idle listener never wakes by itself),
    /// until the connection breaks or `stop()` is called.
    private func waitForNotifications(_ connection: OpaquePointer) {
        let socket = PQsocket(connection)
        while !control.isStopped {
            var descriptors = [pollfd(fd: socket, events: Int16(POLLIN), revents: 0),
                               pollfd(fd: control.wakeup, events: Int16(POLLIN), revents: 0)]
            // Without an eventfd (it could not be made), fall back to checking the flag every 200 ms.
            let ready = poll(&descriptors, control.wakeup >= 0 ? 2 : 1, control.wakeup >= 0 ? -1 : 200)
            if ready < 0 && errno != EINTR { return }
            if ready > 0 && descriptors[0].revents != 0 {
                guard PQconsumeInput(connection) == 1 else {
                    logger.warning("listener lost its connection", metadata: ["error": "\(PostgresConnection.lastError(connection))"])
                    return
                }
                while let notify = PQnotifies(connection) {
                    let channel = String(cString: notify.pointee.relname)
                    let payload = String(cString: notify.pointee.extra)
                    PQfreemem(notify)
                    continuation.yield(.notification(channel: channel, payload: payload))
                }
            }
            if PQstatus(connection) == CONNECTION_BAD { return }
        }
    }

    private func sleep(_ duration: Duration) {
        // Sleep in slices so stop() is honoured promptly.
        var remaining = duration
        while remaining > .zero, !control.isStopped {
            let slice = min(remaining, .milliseconds(100))
            Thread.sleep(forTimeInterval: Double(slice.components.attoseconds) / 1e18 + Double(slice.components.seconds))
            remaining -= slice
        }
    }

    static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
