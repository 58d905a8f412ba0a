#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import OrcastraCommand

extension CommandRunnerTests {
    @Suite(.timeLimit(.minutes(3))) struct Resources {
        /// 200 commands through every path (normal exit, stdin, missing executable, bad directory,
        /// timeout). One leaked descriptor or zombie per command would show up as +40 at least;
        /// the slack only absorbs other test targets running in parallel in the same process.
        @Test func noDescriptorsOrZombiesAreLeaked() async {
            // Warm up lazily created state (dlsym handle, thread-local buffers) before counting.
            _ = await CommandRunner.run(invocation(["true"]))
            let descriptorsBefore = openDescriptorCount()
            let zombiesBefore = zombieChildCount()

            for index in 0..<200 {
                let outcome: CommandOutcome
                switch index % 5 {
                case 0:
                    outcome = await CommandRunner.run(invocation(["true"]))
                case 1:
                    outcome = await CommandRunner.run(invocation(["cat"], input: Array("x".utf8)))
                case 2:
                    outcome = await CommandRunner.run(invocation(["orcastra-no-such-program-x7"]))
                case 3:
                    var request = invocation(["true"])
                    request.workingDirectory = "/nonexistent-orcastra-dir"
                    outcome = await CommandRunner.run(request)
                default:
                    outcome = await CommandRunner.run(invocation(["sleep", "5"], timeout: .milliseconds(5)))
                }
                if index < 5 { #expect(outcome.termination != .cancelled) }
            }

            #expect(openDescriptorCount() - descriptorsBefore < 10)
            #expect(zombieChildCount() - zombiesBefore < 20)
        }
    }
}
