import Foundation

/// Draws a ``DAGLayout`` as SVG: one link per step (to its page), coloured by state and labelled
/// with the state's icon and words, so the drawing reads without colour. Only classes and
/// presentation attributes are used (no `style`), as the Content-Security-Policy forbids inline styles.
///
/// Every step node carries `data-step-id`, every group `data-group`; dashboard.js finds them there
/// to update states live.
enum DAGDrawing {
    static func svg(_ layout: DAGLayout, title: String) -> String {
        var out = ""
        out.reserveCapacity(layout.nodes.count * 600 + layout.edges.count * 120)
        let width = Int(layout.width.rounded(.up)), height = Int(layout.height.rounded(.up))
        out += #"<svg xmlns="http://www.w3.org/2000/svg" class="dag" id="dag" role="img" viewBox="0 0 \#(width) \#(height)" width="\#(width)" height="\#(height)" data-width="\#(width)" data-height="\#(height)" aria-labelledby="dag-title">"#
        out += #"<title id="dag-title">\#(HTMLEscape.escape(title))</title>"#
        out += #"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead"/></marker></defs>"#
        let place = Dictionary(layout.nodes.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        out += #"<g class="edges">"#
        for edge in layout.edges {
            guard let from = place[edge.from], let to = place[edge.to] else { continue }
            let x1 = from.x + DAGLayout.nodeWidth / 2, y1 = from.y + DAGLayout.nodeHeight
            let x2 = to.x + DAGLayout.nodeWidth / 2, y2 = to.y
            let middle = (y1 + y2) / 2
            out += #"<path class="edge" marker-end="url(#arrow)" d="M\#(n(x1)) \#(n(y1)) C\#(n(x1)) \#(n(middle)) \#(n(x2)) \#(n(middle)) \#(n(x2)) \#(n(y2))"/>"#
        }
        out += "</g>"
        for node in layout.nodes {
            if node.isGroup {
                out += group(node)
            } else if let step = node.steps.first {
                out += single(node, step)
            }
        }
        out += "</svg>"
        return out
    }

    private static func single(_ node: DAGLayout.Node, _ step: DAGLayout.Input) -> String {
        let label = StateLabel(step.state)
        let name = HTMLEscape.escape(truncated(step.name, 22))
        let full = HTMLEscape.escape(step.name)
        return #"<a href="/steps/\#(step.id)" class="node-link" data-step-id="\#(step.id)">"#
            + #"<title>\#(full): \#(HTMLEscape.escape(label.text))</title>"#
            + #"<rect class="node \#(label.cssClass)" x="\#(n(node.x))" y="\#(n(node.y))" width="\#(n(DAGLayout.nodeWidth))" height="\#(n(DAGLayout.nodeHeight))" rx="6"/>"#
            + #"<text class="node-name" x="\#(n(node.x + 10))" y="\#(n(node.y + 19))">\#(name)</text>"#
            + #"<text class="node-state" x="\#(n(node.x + 10))" y="\#(n(node.y + 36))">\#(label.icon) \#(HTMLEscape.escape(label.text))</text>"#
            + "</a>"
    }

    private static func group(_ node: DAGLayout.Node) -> String {
        let base = DAGLayout.baseName(node.steps.first?.name ?? "")
        let allShareName = node.steps.allSatisfy { DAGLayout.baseName($0.name) == base }
        let title = allShareName ? "\(base) ×\(node.steps.count)" : "\(node.steps.count) steps"
        let summary = countsText(node.steps.map(\.state))
        return ##"<a href="#steps" class="node-link" data-group="\##(node.key)">"##
            + #"<title>\#(HTMLEscape.escape(title)): \#(HTMLEscape.escape(summary))</title>"#
            + #"<rect class="node group" x="\#(n(node.x))" y="\#(n(node.y))" width="\#(n(DAGLayout.nodeWidth))" height="\#(n(DAGLayout.nodeHeight))" rx="6"/>"#
            + #"<text class="node-name" x="\#(n(node.x + 10))" y="\#(n(node.y + 19))">\#(HTMLEscape.escape(truncated(title, 22)))</text>"#
            + #"<text class="node-state group-counts" x="\#(n(node.x + 10))" y="\#(n(node.y + 36))">\#(HTMLEscape.escape(truncated(summary, 26)))</text>"#
            + "</a>"
    }

    /// `3✓ 1✗ 2▶`: how many steps of a group are in each state, most first. dashboard.js
    /// computes the same text when a member moves.
    static func countsText(_ states: [String]) -> String {
        var counts: [String: Int] = [:]
        for state in states { counts[state, default: 0] += 1 }
        return counts.sorted { ($1.value, $0.key) < ($0.value, $1.key) }
            .map { "\($0.value)\(StateLabel($0.key).icon)" }.joined(separator: " ")
    }

    private static func truncated(_ text: String, _ length: Int) -> String {
        text.count <= length ? text : String(text.prefix(length - 1)) + "…"
    }

    private static func n(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
    }
}
