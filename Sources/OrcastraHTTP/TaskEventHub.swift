import Foundation
import Logging
import OrcastraPostgres
import OrcastraStateMachines

/// Wakes the server's Server-Sent Events streams: one LISTEN connection on
/// `orcastra_task_events` for the whole server, however many clients watch, started with the
/// first stream and stopped with the last.
///
/// The channel is notified on every task state change (with the task's id), not on a step's own
/// transitions (`audit_step_transition` does not notify). So one shared tick, only while a stream is
/// open, wakes every stream twice a second as well: a step that moves without its task moving
/// reaches the client within half a second, and no client has a poll loop of its own.
actor TaskEventHub {
    private let conninfo: String
    private let logger: Logger
    private var subscribers: [UUID: [Int: AsyncStream<Void>.Continuation]] = [:]
    private var nextID = 0
    private var listening: Task<Void, Never>?
    private var listener: PostgresListener?
    private var ticking: Task<Void, Never>?
    let tick: Duration

    init(conninfo: String, tick: Duration = .milliseconds(500), logger: Logger) {
        self.conninfo = conninfo
        self.tick = tick
        self.logger = logger
    }

    /// A wake-up stream for `task`; it yields once at once, then whenever the task may have moved.
    func subscribe(_ task: UUID) -> (id: Int, wakes: AsyncStream<Void>) {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        nextID += 1
        subscribers[task, default: [:]][nextID] = continuation
        continuation.yield()
        startIfNeeded()
        return (nextID, stream)
    }

    func unsubscribe(_ task: UUID, id: Int) {
        subscribers[task]?.removeValue(forKey: id)?.finish()
        if subscribers[task]?.isEmpty == true { subscribers.removeValue(forKey: task) }
        if subscribers.isEmpty { stop() }
    }

    private func startIfNeeded() {
        guard listening == nil else { return }
        let listener = PostgresListener(conninfo: PostgresListener.conninfo(forDatabase: conninfo), channels: [ProtocolChannel.taskEvents], logger: logger)
        self.listener = listener
        listening = Task { [weak self] in
            for await event in listener {
                switch event {
                case .notification(_, let payload):
                    if let id = UUID(uuidString: payload) { await self?.wake(id) }
                case .listening:
                    // (Re)connected: anything may have happened meanwhile.
                    await self?.wakeAll()
                }
            }
        }
        let tick = self.tick
        ticking = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: tick)
                await self?.wakeAll()
            }
        }
    }

    private func stop() {
        listener?.stop()
        listener = nil
        listening?.cancel()
        listening = nil
        ticking?.cancel()
        ticking = nil
    }

    private func wake(_ task: UUID) {
        for continuation in subscribers[task]?.values ?? [:].values { continuation.yield() }
    }

    private func wakeAll() {
        for streams in subscribers.values { for continuation in streams.values { continuation.yield() } }
    }
}
