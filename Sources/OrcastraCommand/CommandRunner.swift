/// Runs `command` step handlers as child processes.
public enum CommandRunner {
    /// Runs the invocation to completion and reports how it ended; never throws.
    ///
    /// All blocking work happens on a dedicated thread (see ``DedicatedThread``), so any number of
    /// commands can run at once without starving Swift's cooperative pool. Cancelling the calling
    /// task kills the child's process group and returns `.cancelled`.
    public static func run(_ invocation: CommandInvocation) async -> CommandOutcome {
        if Task.isCancelled { return CommandOutcome(termination: .cancelled) }
        let signal: CancellationSignal
        do {
            signal = try CancellationSignal()
        } catch {
            return CommandOutcome(termination: .failedToStart(startFailure(invocation, "\(error)")))
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<CommandOutcome, Never>) in
                let started = DedicatedThread.start {
                    continuation.resume(returning: CommandSupervisor(invocation: invocation, signal: signal).run())
                }
                if !started {
                    signal.close()
                    let message = startFailure(invocation, "no thread could be created to supervise it")
                    continuation.resume(returning: CommandOutcome(termination: .failedToStart(message)))
                }
            }
        } onCancel: {
            signal.cancel()
        }
    }

    private static func startFailure(_ invocation: CommandInvocation, _ reason: String) -> String {
        "Could not start \(invocation.argv.first ?? "the command"): \(reason)."
    }
}
