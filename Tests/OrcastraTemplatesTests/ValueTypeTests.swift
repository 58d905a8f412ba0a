import Foundation
import Testing
@testable import OrcastraTemplates

@Suite(.timeLimit(.minutes(3))) struct TemplateDurationTests {
    @Test(arguments: [
        ("250ms", Int64(250)), ("30s", 30_000), ("5m", 300_000), ("1h", 3_600_000),
        ("1m30s", 90_000), ("1h30m", 5_400_000), ("2s500ms", 2_500), ("0s", 0),
    ])
    func parses(_ text: String, _ milliseconds: Int64) throws {
        #expect(try TemplateDuration(parsing: text).milliseconds == milliseconds)
    }

    @Test(arguments: [
        ("30", "has no unit; add one, e.g. 30s"),
        ("5 minutes", "is not a duration"),
        ("30s1m", "largest unit first"),
        ("1d", "is not a duration"),
        ("", "is empty"),
        ("99999999999999999999h", "too large"),
    ])
    func refuses(_ text: String, _ fragment: String) {
        #expect {
            try TemplateDuration(parsing: text)
        } throws: { error in
            (error as? TemplateDurationError)?.message.contains(fragment) == true
        }
    }

    @Test(arguments: [
        (Int64(250), "250ms"), (30_000, "30s"), (90_000, "90s"), (300_000, "5m"),
        (3_600_000, "1h"), (5_400_000, "90m"), (1_500, "1500ms"), (3_661_000, "3661s"), (0, "0s"),
    ])
    func printsShortestForm(_ milliseconds: Int64, _ text: String) throws {
        let duration = TemplateDuration(milliseconds: milliseconds)
        #expect(duration.description == text)
        #expect(try TemplateDuration(parsing: duration.description) == duration)
    }
}

@Suite(.timeLimit(.minutes(3))) struct SemanticVersionTests {
    @Test func parsesAndPrintsBack() throws {
        let version = try SemanticVersion(parsing: "2.10.3-rc.1")
        #expect(version == SemanticVersion(major: 2, minor: 10, patch: 3, prerelease: ["rc", "1"]))
        #expect(version.description == "2.10.3-rc.1")
    }

    @Test(arguments: ["1.0", "1.0.0.0", "v1.0.0", "01.0.0", "1.0.0-", "1.0.0-rc..1", "1.0.0+build", "1.a.0"])
    func refuses(_ text: String) {
        #expect(throws: SemanticVersionError.self) { try SemanticVersion(parsing: text) }
    }

    /// The ordering example from semver.org §11, in increasing precedence.
    @Test func ordersBySemverPrecedence() throws {
        let ordered = try [
            "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
            "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0",
        ].map { try SemanticVersion(parsing: $0) }
        for (lower, higher) in zip(ordered, ordered.dropFirst()) {
            #expect(lower < higher, "\(lower) < \(higher)")
            #expect(!(higher < lower))
        }
        #expect(ordered.shuffled().sorted() == ordered)
    }
}

@Suite(.timeLimit(.minutes(3))) struct RetryPolicyTests {
    static let exponential = RetryPolicy(maxAttempts: 10, backoff: .exponential, initialDelay: .seconds(1), maxDelay: .seconds(10), jitter: false)

    @Test(arguments: [(1, Int64(1_000)), (2, 2_000), (3, 4_000), (4, 8_000), (5, 10_000), (100, 10_000)])
    func exponentialDoublesUpToTheCap(_ attempt: Int, _ expected: Int64) {
        #expect(Self.exponential.delay(afterAttempt: attempt, random: 0.5).milliseconds == expected)
    }

    @Test func fixedAndNone() {
        var policy = Self.exponential
        policy.backoff = .fixed
        #expect(policy.delay(afterAttempt: 7, random: 0).milliseconds == 1_000)
        policy.backoff = .none
        policy.jitter = true
        #expect(policy.delay(afterAttempt: 7, random: 0.9) == .zero)
    }

    /// Equal jitter: between half and all of the base delay.
    @Test(arguments: [(0.0, Int64(2_000)), (0.5, 3_000), (0.999_999, 3_999), (1.5, 4_000), (-1, 2_000)])
    func equalJitter(_ random: Double, _ expected: Int64) {
        var policy = Self.exponential
        policy.jitter = true
        #expect(policy.delay(afterAttempt: 3, random: random).milliseconds == expected)
    }

    @Test func standardDefaults() {
        #expect(RetryPolicy.standard == RetryPolicy(maxAttempts: 3, backoff: .exponential, initialDelay: .seconds(1), maxDelay: .minutes(5), jitter: true))
    }
}

@Suite(.timeLimit(.minutes(3))) struct EditDistanceTests {
    @Test(arguments: [("depend_on", "depends_on", 1), ("fecth", "fetch", 1), ("kitten", "sitting", 3), ("", "abc", 3), ("same", "same", 0)])
    func distance(_ a: String, _ b: String, _ expected: Int) {
        #expect(EditDistance.distance(a, b) == expected)
    }

    @Test func suggestsOnlyCloseMatches() {
        #expect(EditDistance.suggestion(for: "timout", among: TemplateParser.stepKeys) == "timeout")
        #expect(EditDistance.suggestion(for: "zzzzzz", among: TemplateParser.stepKeys) == nil)
    }
}

@Suite(.timeLimit(.minutes(3))) struct TemplateNamesTests {
    @Test(arguments: ["a", "orders", "charge-card", "step_2", String(repeating: "a", count: 63)])
    func accepts(_ name: String) { #expect(TemplateNames.isValid(name)) }

    @Test(arguments: ["", "Orders", "2fa", "_x", "a b", "a.b", "é", String(repeating: "a", count: 64)])
    func refuses(_ name: String) { #expect(!TemplateNames.isValid(name)) }

    @Test func handlersMayContainDots() {
        #expect(TemplateNames.isValid("orders.charge_card", allowDots: true))
        #expect(!TemplateNames.isValid(".orders", allowDots: true))
    }
}
