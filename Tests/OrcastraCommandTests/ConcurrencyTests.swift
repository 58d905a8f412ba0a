import Testing
@testable import OrcastraCommand

extension CommandRunnerTests {
    @Suite(.timeLimit(.minutes(3))) struct Concurrency {
        /// 32 commands sleeping 0.5 s each finish together in well under 6 s. If any of them blocked a
        /// cooperative-pool thread (one per core), they would run in waves: 16 waves, 8 s on 2 cores.
        /// (The bound leaves room for spawning 32 processes on a loaded machine: 2.06 s was seen
        /// while a build ran beside the tests, 4.13 s in a CI run on shared cores.)
        /// (Eight commands of 0.3 s would not prove it: on a 2-core pool four waves take only 1.2 s.)
        @Test func manyCommandsRunInParallel() async {
            let clock = ContinuousClock()
            let started = clock.now
            let outcomes = await withTaskGroup(of: CommandOutcome.self) { group in
                for _ in 0..<32 {
                    group.addTask { await CommandRunner.run(invocation(["sleep", "0.5"], timeout: .seconds(10))) }
                }
                var all: [CommandOutcome] = []
                for await outcome in group { all.append(outcome) }
                return all
            }
            let elapsed = clock.now - started
            #expect(outcomes.count == 32)
            #expect(outcomes.allSatisfy { $0.termination == .exited(0) && $0.duration >= .milliseconds(500) })
            #expect(elapsed < .seconds(6), "took \(seconds(elapsed)) s (in waves it would take 8 s)")
        }
    }
}
