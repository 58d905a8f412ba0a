import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

/// The task page of a 1,000-step task (docs/benchmarks.md, "Dashboard"). The time is printed;
/// the bound only catches a gross regression (the target, < 1 s, is measured and recorded there).
@Suite("Dashboard performance", .timeLimit(.minutes(3)))
struct DashboardPerformanceTests {
    static func chain(_ count: Int) -> String {
        var yaml = "namespace: big\nname: chain\nversion: 1.0.0\nsteps:\n"
        for index in 0..<count {
            yaml += "  - {name: s\(index), handler: big.noop\(index == 0 ? "" : ", depends_on: [s\(index - 1)]")}\n"
        }
        return yaml
    }

    static func fan(_ width: Int) -> String {
        var yaml = "namespace: big\nname: fan\nversion: 1.0.0\nsteps:\n  - {name: root, handler: big.noop}\n"
        for index in 0..<width { yaml += "  - {name: m\(index), handler: big.noop, depends_on: [root]}\n" }
        yaml += "  - {name: join, handler: big.noop, depends_on: [\((0..<width).map { "m\($0)" }.joined(separator: ", "))]}\n"
        return yaml
    }

    @Test("the page of a 1,000-step chain and of a 1 → 998 → 1 fan renders well under a second")
    func thousandSteps() async throws {
        let fixture = try await DashboardFixture.make()
        try await fixture.register(Self.chain(1000))
        try await fixture.register(Self.fan(998))
        let chain = try await fixture.submit("big/chain")
        let fan = try await fixture.submit("big/fan")
        let writer = fixture.writer
        try await fixture.withClient { client in
            let session = try await client.signIn(writer)
            for (label, task) in [("chain of 1,000", chain), ("fan 1 → 998 → 1", fan)] {
                _ = try await client.page(.get, "/tasks/\(task)", cookies: [session])
                var times: [Double] = []
                var size = 0
                for _ in 0..<5 {
                    let start = ContinuousClock.now
                    let page = try await client.page(.get, "/tasks/\(task)", cookies: [session])
                    times.append(Double((ContinuousClock.now - start).components.attoseconds) / 1e18 + Double((ContinuousClock.now - start).components.seconds))
                    #expect(page.status == .ok)
                    #expect(page.body.components(separatedBy: "data-step-row=").count - 1 == 1000)
                    size = page.body.utf8.count
                }
                let median = times.sorted()[2]
                print("dashboard task page, \(label): median \(String(format: "%.0f", median * 1000)) ms of 5, \(size / 1024) KiB")
                #expect(median < 5, "the \(label) page took \(median) s")
            }
        }
        await fixture.pool.shutdown()
    }
}
