import Foundation
import Logging
import OrcastraPostgres
import OrcastraTemplates

/// Where the worker stands with its row in `orcastra.workers`.
struct RegistrationState: Sendable {
    /// A registration was sent (so a row may exist and is deleted on the way out).
    var attempted = false
    var isRegistered = false
    /// When the database first registered this process; kept when it registers again.
    var startedAt: Date?
    /// The database has no registry (migrated by an older Orcastra): said once, not at every beat.
    var warnedUnavailable = false
}

// The worker registry (docs/worker-protocol.md#the-worker-registry): the worker's row is written
// at start, refreshed with the heartbeat round and deleted at a clean exit. It is advisory — no
// claim or report reads it — so a database without it costs a warning, never the work.
extension Worker {
    /// Registers this process, or registers it again when its row went missing.
    func register() async {
        registration.attempted = true
        do {
            let connection = try await heartbeatSlot.get()
            let row = try await connection.queryRow("""
                SELECT * FROM orcastra.register_worker(\(configuration.workerID), \(configuration.namespace),
                    \(WorkerConfiguration.hostname), \(Int(getpid()))::int, \(configuration.version),
                    \(configuration.concurrency)::int, \(Int(configuration.registryBeatInterval.milliseconds))::int,
                    \(registration.startedAt))
                """)
            registration.startedAt = try row.decode("started_at", as: Date.self)
            if registration.warnedUnavailable { logger.info("registered in the worker registry") }
            registration.isRegistered = true
            registration.warnedUnavailable = false
            if let displaced = try row.decode("displaced", as: String?.self) {
                logger.warning("""
                    another live worker (\(displaced)) was registered under this worker's id: two running workers share \
                    the name \(configuration.workerID), which makes leases, logs and `orcastra worker list` ambiguous; \
                    give each its own --worker-id
                    """)
            }
        } catch {
            registration.isRegistered = false
            registryFailed(error)
        }
    }

    /// Refreshes the row's `last_seen_at` and running steps; registers again if it is gone.
    func beatRegistry() async {
        guard registration.isRegistered else {
            await register()
            return
        }
        do {
            let connection = try await heartbeatSlot.get()
            let known = try await connection.queryRow("""
                SELECT orcastra.heartbeat_worker(\(configuration.workerID), \(state.heldCount)::int) AS known
                """).decode("known", as: Bool.self)
            if !known {
                logger.info("this worker's registry row is gone (pruned while the process was stopped, or deleted); registering again")
                await register()
            }
        } catch {
            registryFailed(error)
        }
    }

    /// Deletes the row at a clean exit, on the connection already open: on the way out the worker
    /// never waits for a database that went away (the row then turns stale, and is pruned).
    func deregister() async {
        guard registration.attempted else { return }
        guard let connection = await heartbeatSlot.current() else {
            logger.info("could not leave the worker registry (no open connection); the row turns stale and is pruned later")
            return
        }
        let id = configuration.workerID
        let logger = logger
        // Also when the worker's task was cancelled: the row must not outlive a clean exit.
        await Task {
            do {
                _ = try await connection.query("SELECT orcastra.deregister_worker(\(id))")
            } catch {
                logger.info("could not leave the worker registry; the row turns stale and is pruned later", metadata: ["error": "\(error)"])
            }
        }.value
    }

    private func registryFailed(_ error: any Error) {
        if let error = error as? PostgresError, error.meansSchemaNotMigrated {
            registration.isRegistered = false
            guard !registration.warnedUnavailable else { return }
            registration.warnedUnavailable = true
            logger.warning("""
                the database has no worker registry (its schema is older than this worker): steps run as usual, but \
                `orcastra worker list` does not show this worker; run `orcastra migrate`
                """, metadata: ["error": "\(error)"])
        } else {
            // A passing fault: the step heartbeat on the same connection says so too. Next beat.
            logger.debug("could not update the worker registry; trying again at the next beat", metadata: ["error": "\(error)"])
        }
    }

    // MARK: - Namespace check

    /// Warns when no registered template has a step in this worker's namespace: it would wait for
    /// ever on a typo. It still runs, since the template may be registered later. One query.
    func checkNamespace() async {
        let namespaces: [String]
        do {
            let connection = try await heartbeatSlot.get()
            namespaces = try await connection.query("SELECT orcastra.step_namespaces() AS namespace")
                .map { try $0.decode("namespace", as: String.self) }
        } catch {
            logger.debug("could not read the namespaces in use", metadata: ["error": "\(error)"])
            return
        }
        if let warning = Self.namespaceWarning(configuration.namespace, inUse: namespaces) {
            logger.warning("\(warning)")
        }
    }

    /// The warning for a namespace that no template's steps use, naming those in use, closest first.
    static func namespaceWarning(_ namespace: String, inUse namespaces: [String], listed limit: Int = 10) -> String? {
        guard !namespaces.contains(namespace) else { return nil }
        guard !namespaces.isEmpty else {
            return "no template is registered yet: this worker gets no work until one with steps in namespace \(namespace) is"
        }
        let closest = namespaces
            .map { (name: $0, distance: EditDistance.distance(namespace, $0)) }
            .sorted { ($0.distance, $0.name) < ($1.distance, $1.name) }
            .map(\.name)
        let more = closest.count > limit ? ", and \(closest.count - limit) more" : ""
        return """
            no registered template has steps in namespace \(namespace), so this worker gets no work until one does \
            (is --namespace right?); namespaces in use: \(closest.prefix(limit).joined(separator: ", "))\(more) (closest first)
            """
    }
}
