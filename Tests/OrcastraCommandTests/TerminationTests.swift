#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import OrcastraCommand

extension CommandRunnerTests {
    @Suite(.timeLimit(.minutes(3))) struct Termination {
        @Test(arguments: [Int32(0), 3, 78])
        func exitStatusIsReported(code: Int32) async {
            let outcome = await CommandRunner.run(invocation(["sh", "-c", "exit \(code)"]))
            #expect(outcome.termination == .exited(code))
        }

        @Test func deathBySignalIsReported() async {
            let outcome = await CommandRunner.run(invocation(["sh", "-c", "kill -TERM $$"]))
            #expect(outcome.termination == .signaled(SIGTERM))
        }

        @Test func timeoutKillsTheWholeProcessGroup() async throws {
            let clock = ContinuousClock()
            let started = clock.now
            let outcome = await CommandRunner.run(invocation(
                ["sh", "-c", "sleep 30 & echo $!; sleep 30"], timeout: .milliseconds(300)
            ))
            let elapsed = clock.now - started
            #expect(outcome.termination == .timedOut)
            #expect(elapsed < .seconds(2))
            #expect(outcome.duration >= .milliseconds(300))
            let grandchild = try #require(pid_t(text(outcome.standardOutput).trimmingSuffix("\n")))
            #expect(await becomesDead(grandchild))
        }

        @Test func cancellationKillsTheWholeProcessGroup() async throws {
            let clock = ContinuousClock()
            let started = clock.now
            let task = Task {
                await CommandRunner.run(invocation(["sh", "-c", "sleep 30 & echo $!; wait"], timeout: .seconds(30)))
            }
            try await Task.sleep(for: .milliseconds(300))
            task.cancel()
            let outcome = await task.value
            #expect(outcome.termination == .cancelled)
            #expect(clock.now - started < .seconds(2))
            let grandchild = try #require(pid_t(text(outcome.standardOutput).trimmingSuffix("\n")))
            #expect(await becomesDead(grandchild))
        }

        @Test func alreadyCancelledTaskStartsNothing() async throws {
            let marker = "/tmp/orcastra-command-marker-\(getpid())"
            unlink(marker)
            let task = Task {
                try? await Task.sleep(for: .seconds(30))
                return await CommandRunner.run(invocation(["touch", marker]))
            }
            task.cancel()
            let outcome = await task.value
            #expect(outcome.termination == .cancelled)
            #expect(access(marker, F_OK) != 0)
        }

        /// Once the step's own process exits, a background process holding stdout must neither keep
        /// the runner waiting nor outlive the step.
        @Test func exitSweepsUpBackgroundProcesses() async throws {
            let clock = ContinuousClock()
            let started = clock.now
            let outcome = await CommandRunner.run(invocation(
                ["sh", "-c", "sleep 30 & echo $!; exit 4"], timeout: .seconds(20)
            ))
            #expect(outcome.termination == .exited(4))
            #expect(clock.now - started < .seconds(2))
            let grandchild = try #require(pid_t(text(outcome.standardOutput).trimmingSuffix("\n")))
            #expect(await becomesDead(grandchild))
        }
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
