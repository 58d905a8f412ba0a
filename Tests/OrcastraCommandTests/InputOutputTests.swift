#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import OrcastraCommand

extension CommandRunnerTests {
    @Suite(.timeLimit(.minutes(3))) struct InputOutput {
        @Test func catEchoesStandardInput() async {
            let outcome = await CommandRunner.run(invocation(["cat"], input: Array("hello, orcastra\n".utf8)))
            #expect(outcome.termination == .exited(0))
            #expect(text(outcome.standardOutput) == "hello, orcastra\n")
            #expect(outcome.standardError.isEmpty)
            #expect(!outcome.outputTruncated && !outcome.errorTruncated)
        }

        @Test func emptyInputGivesTheChildEndOfFile() async {
            let outcome = await CommandRunner.run(invocation(["cat"], timeout: .seconds(5)))
            #expect(outcome.termination == .exited(0))
            #expect(outcome.standardOutput.isEmpty)
        }

        @Test func oneMebibyteRoundTripsThroughCat() async {
            let input = patternBytes(count: 1 << 20)
            let outcome = await CommandRunner.run(invocation(["cat"], input: input))
            #expect(outcome.termination == .exited(0))
            #expect(outcome.standardOutput.count == input.count)
            #expect(outcome.standardOutput == input)
            #expect(!outcome.outputTruncated)
        }

        /// The child writes 1 MiB before it reads anything; a runner that blocks writing stdin deadlocks.
        @Test func childThatWritesBeforeReadingDoesNotDeadlock() async {
            let input = patternBytes(count: 1 << 20)
            let outcome = await CommandRunner.run(invocation(
                ["sh", "-c", "head -c 1048576 /dev/zero; cat >/dev/null"], input: input, timeout: .seconds(10)
            ))
            #expect(outcome.termination == .exited(0))
            #expect(outcome.standardOutput == [UInt8](repeating: 0, count: 1 << 20))
        }

        /// `true` never reads; writing the rest of stdin raises SIGPIPE, which must not kill the tests.
        @Test func childThatIgnoresInputDoesNotKillTheWorker() async {
            let outcome = await CommandRunner.run(invocation(["true"], input: patternBytes(count: 4 << 20)))
            #expect(outcome.termination == .exited(0))
        }

        @Test func standardOutputIsCutAtTheLimitButTheChildRunsToTheEnd() async {
            let full = (1...20_000).map { "\($0)\n" }.joined()
            let outcome = await CommandRunner.run(invocation(["seq", "1", "20000"], outputLimit: 1000))
            // Exit 0, not SIGPIPE: the runner kept reading past the limit.
            #expect(outcome.termination == .exited(0))
            #expect(outcome.standardOutput == Array(full.utf8.prefix(1000)))
            #expect(outcome.outputTruncated)
        }

        @Test func standardErrorKeepsItsLastBytes() async {
            let full = (1...20_000).map { "\($0)\n" }.joined()
            let outcome = await CommandRunner.run(invocation(
                ["sh", "-c", "seq 1 20000 >&2; exit 1"], errorLimit: 1000
            ))
            #expect(outcome.termination == .exited(1))
            #expect(outcome.standardError == Array(full.utf8.suffix(1000)))
            #expect(outcome.errorTruncated)
            #expect(outcome.standardOutput.isEmpty)
        }

        @Test func outputWithinTheLimitsIsNotMarkedTruncated() async {
            let outcome = await CommandRunner.run(invocation(
                ["sh", "-c", "printf 12345; printf abcde >&2"], outputLimit: 5, errorLimit: 5
            ))
            #expect(text(outcome.standardOutput) == "12345")
            #expect(text(outcome.standardError) == "abcde")
            #expect(!outcome.outputTruncated && !outcome.errorTruncated)
        }
    }

    @Suite(.timeLimit(.minutes(3))) struct Captures {
        @Test(arguments: [1, 7, 999, 1000, 1001, 4096])
        func tailKeepsExactlyTheLastBytes(chunkSize: Int) {
            let data = patternBytes(count: 10_000)
            var tail = TailCapture(limit: 1000)
            var head = HeadCapture(limit: 1000)
            var offset = 0
            while offset < data.count {
                let end = min(offset + chunkSize, data.count)
                data[offset..<end].withUnsafeBytes {
                    tail.append($0)
                    head.append($0)
                }
                offset = end
            }
            #expect(tail.bytes == Array(data.suffix(1000)))
            #expect(head.bytes == Array(data.prefix(1000)))
            #expect(tail.truncated && head.truncated)
        }

        @Test func zeroLimitsKeepNothing() {
            var tail = TailCapture(limit: 0)
            var head = HeadCapture(limit: 0)
            [1, 2, 3].withUnsafeBytes {
                tail.append($0)
                head.append($0)
            }
            #expect(tail.bytes.isEmpty && head.bytes.isEmpty)
            #expect(tail.truncated && head.truncated)
        }
    }
}
