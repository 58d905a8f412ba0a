import Dispatch
import Foundation
import Logging
import OrcastraCommand
import ServiceLifecycle
import Synchronization

/// Process plumbing shared by the long-running executables.
public enum Lifecycle {
    private static let logging = Mutex((bootstrapped: false, level: Logger.Level.info))

    /// Logs to stderr at `level` (else ORCASTRA_LOG_LEVEL, else `fallback`), one line per event.
    /// May be called again (`orcastra worker` after `orcastra`'s own setup): swift-log can be
    /// bootstrapped only once, so later calls change the level of loggers made from then on.
    public static func bootstrapLogging(level: Logger.Level?, fallback: Logger.Level = .info) {
        let configured = level
            ?? ProcessInfo.processInfo.environment["ORCASTRA_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
            ?? fallback
        let first = logging.withLock { state in
            state.level = configured
            defer { state.bootstrapped = true }
            return !state.bootstrapped
        }
        guard first else { return }
        // With tracing on, each record carries the trace_id and span_id of the span it was logged in.
        LoggingSystem.bootstrap({ label, provider in
            var handler = OneLineLogHandler(inner: StreamLogHandler.standardError(label: label, metadataProvider: provider))
            handler.logLevel = Lifecycle.logging.withLock { $0.level }
            return handler
        }, metadataProvider: TracingSetup.loggingMetadataProvider())
    }

    /// Runs `services` in a `ServiceGroup` until they end. The first SIGTERM or SIGINT starts the
    /// group's graceful shutdown (a worker stops claiming, finishes or hands back its steps); a
    /// second one kills every running command's process group and exits at once, with 143 for
    /// SIGTERM and 130 for SIGINT (128 + the signal), so no step's command is left running orphaned.
    public static func runUntilSignalled(_ services: [any Service], logger: Logger) async throws {
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: services, logger: logger))
        let signalled = Atomic<Bool>(false)
        let sources = [SIGTERM, SIGINT].map { number -> any DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if signalled.exchange(true, ordering: .acquiringAndReleasing) {
                    FileHandle.standardError.write(Data("second signal: stopping every running command and exiting now\n".utf8))
                    LiveProcessGroups.killAll()
                    exit(128 + number)
                }
                Task { await group.triggerGracefulShutdown() }
            }
            source.resume()
            return source
        }
        defer { for source in sources { source.cancel() } }
        try await group.run()
    }
}
