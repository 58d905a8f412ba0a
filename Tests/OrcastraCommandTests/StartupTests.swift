#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import OrcastraCommand

extension CommandRunnerTests {
    @Suite(.timeLimit(.minutes(3))) struct Startup {
        @Test func missingExecutableIsReportedNotCrashed() async throws {
            let outcome = await CommandRunner.run(invocation(["orcastra-no-such-program-x7"]))
            guard case .failedToStart(let message) = outcome.termination else {
                Issue.record("expected failedToStart, got \(outcome.termination)")
                return
            }
            #expect(message.contains("orcastra-no-such-program-x7"))
            #expect(message.contains("not found on PATH"))
        }

        @Test func missingExplicitPathIsReported() async {
            let outcome = await CommandRunner.run(invocation(["/nonexistent/orcastra-tool"]))
            guard case .failedToStart(let message) = outcome.termination else {
                Issue.record("expected failedToStart, got \(outcome.termination)")
                return
            }
            #expect(message.contains("/nonexistent/orcastra-tool"))
            #expect(message.contains("No such file or directory"))
        }

        @Test func emptyArgvIsReported() async {
            let outcome = await CommandRunner.run(invocation([]))
            guard case .failedToStart = outcome.termination else {
                Issue.record("expected failedToStart, got \(outcome.termination)")
                return
            }
        }

        @Test func missingWorkingDirectoryIsReported() async {
            var request = invocation(["pwd"])
            request.workingDirectory = "/nonexistent-orcastra-dir"
            let outcome = await CommandRunner.run(request)
            guard case .failedToStart(let message) = outcome.termination else {
                Issue.record("expected failedToStart, got \(outcome.termination)")
                return
            }
            #expect(message.contains("/nonexistent-orcastra-dir"))
        }

        @Test func environmentAndWorkingDirectoryAreApplied() async throws {
            var template = Array("/tmp/orcastra-command-XXXXXX".utf8CString)
            let directory = try #require(mkdtemp(&template).map { String(cString: $0) })
            defer { rmdir(directory) }
            let outcome = await CommandRunner.run(CommandInvocation(
                argv: ["sh", "-c", "echo $FOO; pwd"],
                environment: ["FOO": "bar baz", "PATH": "/usr/bin:/bin"],
                workingDirectory: directory,
                timeout: .seconds(10)
            ))
            #expect(outcome.termination == .exited(0))
            #expect(text(outcome.standardOutput) == "bar baz\n\(directory)\n")
        }

        /// The environment replaces the worker's entirely; with no PATH in it, `env` is still found
        /// through the worker's PATH.
        @Test func environmentIsTheWholeEnvironment() async {
            let outcome = await CommandRunner.run(CommandInvocation(
                argv: ["env"], environment: ["ONLY": "this"], timeout: .seconds(10)
            ))
            #expect(outcome.termination == .exited(0))
            #expect(text(outcome.standardOutput) == "ONLY=this\n")
        }

        /// The runner thread blocks SIGPIPE; the child must start with a clean signal state.
        @Test func childStartsWithNoBlockedOrIgnoredSignals() async {
            let outcome = await CommandRunner.run(invocation(["cat", "/proc/self/status"]))
            let masks = signalMasks(text(outcome.standardOutput))
            // Only the 31 standard signals: glibc's posix_spawn itself leaves its two internal
            // real-time signals (32, 33) ignored in every child.
            #expect(masks["SigBlk"].map { $0 & 0x7fff_ffff } == 0)
            #expect(masks["SigIgn"].map { $0 & 0x7fff_ffff } == 0)
        }

        @Test func childLeadsItsOwnProcessGroup() async {
            let outcome = await CommandRunner.run(invocation(["sh", "-c", "echo $$; ps -o pgid= -p $$"]))
            let fields = text(outcome.standardOutput).split(whereSeparator: { $0 == "\n" || $0 == " " })
            #expect(fields.count == 2)
            #expect(fields.first == fields.last)
            #expect(Int32(fields.first ?? "") != getpgrp())
        }

        @Test func lookupSearchesPathInOrderAndReportsTheSearchedPath() {
            #expect((try? ExecutableLookup.resolve("sh", searchPath: "/nonexistent:/bin:/usr/bin", workingDirectory: nil).get()) == "/bin/sh")
            #expect((try? ExecutableLookup.resolve("./x", searchPath: "/bin", workingDirectory: nil).get()) == "./x")
            guard case .failure(let failure) = ExecutableLookup.resolve("sh", searchPath: "/nonexistent", workingDirectory: nil) else {
                Issue.record("sh should not be found on /nonexistent")
                return
            }
            #expect(failure.message == "sh was not found on PATH (/nonexistent).")
        }
    }
}

private func signalMasks(_ status: String) -> [String: UInt64] {
    var masks: [String: UInt64] = [:]
    for line in status.split(separator: "\n") {
        let parts = line.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, parts[0].hasPrefix("Sig") else { continue }
        masks[String(parts[0])] = UInt64(parts[1].trimmingPrefix("\t"), radix: 16)
    }
    return masks
}
