import Dispatch
import Foundation
import Logging

/// Process plumbing shared by the long-running executables.
public enum Lifecycle {
    /// Logs to stderr at `level` (or ORCASTRA_LOG_LEVEL), one line per event.
    public static func bootstrapLogging(level: Logger.Level?) {
        let configured = level
            ?? ProcessInfo.processInfo.environment["ORCASTRA_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
            ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = configured
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
