import Dispatch
import Foundation
import Logging
import OrcastraCommand
import ServiceLifecycle
import Synchronization

/// Process plumbing shared by the long-running executables.
public enum Lifecycle {
    private static let logging = Mutex((bootstrapped: false, level: Logger.Level.info, format: LogFormat.text))

    /// Logs to stderr at `level` (else ORCASTRA_LOG_LEVEL, else `fallback`), one line per event:
    /// text for people, or with `format` `.json` (else ORCASTRA_LOG_FORMAT) one JSON object per
    /// line. `metadataProvider` adds metadata to every record (tracing's `trace_id`, `span_id`).
    /// May be called again (`orcastra worker` after `orcastra`'s own setup): swift-log can be
    /// bootstrapped only once, so later calls change the level and format of loggers made from then on.
    public static func bootstrapLogging(level: Logger.Level?, format: LogFormat? = nil, fallback: Logger.Level = .info,
                                        metadataProvider: Logger.MetadataProvider? = nil) {
        let configured = level
            ?? ProcessInfo.processInfo.environment["ORCASTRA_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
            ?? fallback
        let chosenFormat = format ?? LogFormat.fromEnvironment ?? .text
        let first = logging.withLock { state in
            state.level = configured
            state.format = chosenFormat
            defer { state.bootstrapped = true }
            return !state.bootstrapped
        }
        guard first else { return }
        // With tracing on, each record carries the trace_id and span_id of the span it was logged in.
        LoggingSystem.bootstrap({ label, provider in
            let (level, format) = Lifecycle.logging.withLock { ($0.level, $0.format) }
            switch format {
            case .text:
                var handler = OneLineLogHandler(inner: StreamLogHandler.standardError(label: label, metadataProvider: provider))
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label, metadataProvider: provider)
                handler.logLevel = level
                return handler
            }
        }, metadataProvider: metadataProvider ?? TracingSetup.loggingMetadataProvider())
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
