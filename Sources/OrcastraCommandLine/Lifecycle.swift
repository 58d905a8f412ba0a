import Dispatch
import Foundation
import Logging
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
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Lifecycle.logging.withLock { $0.level }
            return handler
        }
    }

    /// Runs `body` until SIGTERM or SIGINT, which cancel it (a graceful shutdown); a second signal
    /// exits at once.
    public static func runUntilSignalled(_ body: @escaping @Sendable () async -> Void) async {
        let work = Task { await body() }
        let sources = [SIGTERM, SIGINT].map { number -> any DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if work.isCancelled {
                    FileHandle.standardError.write(Data("second signal: exiting now\n".utf8))
                    exit(130)
                }
                work.cancel()
            }
            source.resume()
            return source
        }
        await work.value
        for source in sources { source.cancel() }
    }
}
