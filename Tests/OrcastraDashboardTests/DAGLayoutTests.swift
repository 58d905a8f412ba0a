import Foundation
@testable import OrcastraDashboard
import Testing

@Suite("DAG layout", .timeLimit(.minutes(5)))
struct DAGLayoutTests {
    func input(_ id: Int64, _ name: String, _ parents: [String] = [], state: String = "pending") -> DAGLayout.Input {
        DAGLayout.Input(id: id, name: name, state: state, dependsOn: parents)
    }

    @Test("a diamond: parents above children, the middle pair side by side, the ends centred")
    func diamond() {
        let layout = DAGLayout([input(1, "a"), input(2, "b", ["a"]), input(3, "c", ["a"]), input(4, "d", ["b", "c"])])
        let node = Dictionary(uniqueKeysWithValues: layout.nodes.map { ($0.key, $0) })
        let (a, b, c, d) = (node["s1"]!, node["s2"]!, node["s3"]!, node["s4"]!)
        let layers: [Int] = [a.layer, b.layer, c.layer, d.layer]
        #expect(layers == [0, 1, 1, 2])
        #expect(a.y < b.y && b.y == c.y && c.y < d.y)
        #expect(b.x < c.x)
        #expect(c.x - b.x >= DAGLayout.nodeWidth)
        #expect(abs((a.x + DAGLayout.nodeWidth / 2) - layout.width / 2) < 0.01)
        #expect(a.x == d.x)
        #expect(Set(layout.edges.map { "\($0.from)>\($0.to)" }) == ["s1>s2", "s1>s3", "s2>s4", "s3>s4"])
    }

    @Test("a 1,000-item fan-out is one group node; a 1,000-step chain is 1,000 layers")
    func wideAndLong() {
        var wide = [input(1, "split")]
        for index in 0..<1000 { wide.append(input(Int64(index + 2), "resize[\(index)]", ["split"], state: index < 10 ? "error" : "complete")) }
        wide.append(input(2000, "join", (0..<1000).map { "resize[\($0)]" }))
        let fan = DAGLayout(wide)
        #expect(fan.nodes.count == 3)
        #expect(fan.nodes[1].isGroup && fan.nodes[1].steps.count == 1000)
        #expect(fan.edges.count == 2)
        #expect(DAGDrawing.countsText(fan.nodes[1].steps.map(\.state)) == "990✓ 10✗")

        let chain = DAGLayout((0..<1000).map { input(Int64($0), "s\($0)", $0 == 0 ? [] : ["s\($0 - 1)"]) })
        #expect(chain.nodes.count == 1000)
        #expect(chain.nodes.last!.layer == 999)
        #expect(chain.width < 300)
    }

    @Test("the SVG escapes step names and labels each state in words")
    func drawing() {
        let layout = DAGLayout([input(1, "<b>&", state: "complete"), input(2, "x", ["<b>&"], state: "error")])
        let svg = DAGDrawing.svg(layout, title: "t")
        #expect(svg.contains("&lt;b&gt;&amp;"))
        #expect(!svg.contains("<b>"))
        #expect(svg.contains("✓ complete") && svg.contains("✗ error"))
        #expect(svg.contains(#"data-step-id="2""#) && svg.contains(#"href="/steps/2""#))
    }
}
