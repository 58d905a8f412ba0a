/// A layered layout of a DAG (parents above children), computed on the server so the task page's
/// SVG is drawn without JavaScript.
///
/// Each step's layer is its longest path from a root, so every edge points down. Within a layer,
/// nodes are ordered by the mean position of their parents (two barycentre sweeps), which keeps
/// edges short and uncrossed for the usual shapes (chains, diamonds, fan-out/fan-in). A layer
/// wider than `maximumWidth` is collapsed into one group node per template step name (a fan-out
/// of 1,000 items is one box counting its states), so a 1,000-step DAG stays readable; the step
/// table under the drawing still lists every step.
public struct DAGLayout: Sendable, Equatable {
    public struct Input: Sendable, Hashable {
        public var id: Int64
        public var name: String
        public var state: String
        /// Names of the parents, as `StepDetail.dependsOn` gives them.
        public var dependsOn: [String]
        public init(id: Int64, name: String, state: String, dependsOn: [String]) {
            self.id = id
            self.name = name
            self.state = state
            self.dependsOn = dependsOn
        }
    }

    public struct Node: Sendable, Equatable {
        /// `s<step id>` for one step, `g<layer>-<n>` for a group.
        public var key: String
        public var layer: Int
        public var x: Double
        public var y: Double
        /// The steps drawn by this node (one, or a group's members), in id order.
        public var steps: [Input]
        public var isGroup: Bool { key.hasPrefix("g") }
    }

    public struct Edge: Sendable, Equatable {
        public var from: String
        public var to: String
    }

    public static let nodeWidth = 170.0
    public static let nodeHeight = 46.0
    public static let horizontalGap = 24.0
    public static let verticalGap = 46.0
    public static let margin = 12.0

    public var nodes: [Node]
    public var edges: [Edge]
    public var width: Double
    public var height: Double

    public init(_ steps: [Input], maximumWidth: Int = 12) {
        let byName = Dictionary(steps.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        // Longest path from a root, in an order where parents come first (Kahn's algorithm);
        // a step on a cycle (which the template parser refuses) ends up on layer 0.
        var layer: [Int64: Int] = [:]
        var indegree: [Int64: Int] = [:]
        var children: [String: [Input]] = [:]
        for step in steps {
            let parents = step.dependsOn.filter { byName[$0] != nil }
            indegree[step.id] = parents.count
            for parent in parents { children[parent, default: []].append(step) }
        }
        var ready = steps.filter { indegree[$0.id] == 0 }
        var cursor = 0
        while cursor < ready.count {
            let step = ready[cursor]
            cursor += 1
            let own = layer[step.id] ?? 0
            layer[step.id] = own
            for child in children[step.name] ?? [] {
                layer[child.id] = max(layer[child.id] ?? 0, own + 1)
                indegree[child.id]! -= 1
                if indegree[child.id] == 0 { ready.append(child) }
            }
        }
        let layerCount = (layer.values.max() ?? 0) + 1
        var layers = [[Input]](repeating: [], count: layerCount)
        for step in steps { layers[layer[step.id] ?? 0].append(step) }

        // Collapse wide layers: one group per step name (a fan-out's instances share theirs).
        var nodeOf: [Int64: String] = [:]
        var rows: [[(key: String, steps: [Input])]] = []
        for (index, members) in layers.enumerated() {
            var row: [(key: String, steps: [Input])] = []
            if members.count > maximumWidth {
                var groups: [String: [Input]] = [:]
                var order: [String] = []
                for step in members {
                    let base = Self.baseName(step.name)
                    if groups[base] == nil { order.append(base) }
                    groups[base, default: []].append(step)
                }
                // Still too many distinct names: one group for the whole layer.
                if order.count > maximumWidth {
                    row.append((key: "g\(index)-0", steps: members))
                } else {
                    for (number, base) in order.enumerated() {
                        let group = groups[base]!
                        row.append((key: group.count == 1 ? "s\(group[0].id)" : "g\(index)-\(number)", steps: group))
                    }
                }
            } else {
                row = members.map { (key: "s\($0.id)", steps: [$0]) }
            }
            for entry in row { for step in entry.steps { nodeOf[step.id] = entry.key } }
            rows.append(row)
        }

        // Edges between drawn nodes, once each.
        var seen = Set<String>()
        var edges: [Edge] = []
        var parentsOf: [String: [String]] = [:]
        for step in steps {
            guard let to = nodeOf[step.id] else { continue }
            for parentName in step.dependsOn {
                guard let parent = byName[parentName], let from = nodeOf[parent.id], from != to else { continue }
                if seen.insert(from + ">" + to).inserted {
                    edges.append(Edge(from: from, to: to))
                    parentsOf[to, default: []].append(from)
                }
            }
        }

        // Order each layer by the mean position of its parents (barycentre), top to bottom.
        var position: [String: Double] = [:]
        for (index, row) in rows.enumerated() {
            var ordered = row
            if index > 0 {
                let keyed = row.enumerated().map { offset, entry -> (Double, Int, (key: String, steps: [Input])) in
                    let parents = parentsOf[entry.key] ?? []
                    let centre = parents.isEmpty ? Double(offset) : parents.compactMap { position[$0] }.reduce(0, +) / Double(parents.count)
                    return (centre, offset, entry)
                }
                ordered = keyed.sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map(\.2)
            }
            rows[index] = ordered
            for (offset, entry) in ordered.enumerated() { position[entry.key] = Double(offset) }
        }

        let widest = rows.map(\.count).max() ?? 0
        let totalWidth = Self.margin * 2 + Double(widest) * Self.nodeWidth + Double(max(widest - 1, 0)) * Self.horizontalGap
        var nodes: [Node] = []
        for (index, row) in rows.enumerated() {
            let rowWidth = Double(row.count) * Self.nodeWidth + Double(max(row.count - 1, 0)) * Self.horizontalGap
            let start = (totalWidth - rowWidth) / 2
            for (offset, entry) in row.enumerated() {
                nodes.append(Node(key: entry.key, layer: index,
                                  x: start + Double(offset) * (Self.nodeWidth + Self.horizontalGap),
                                  y: Self.margin + Double(index) * (Self.nodeHeight + Self.verticalGap),
                                  steps: entry.steps))
            }
        }
        self.nodes = nodes
        self.edges = edges
        width = max(totalWidth, Self.nodeWidth + Self.margin * 2)
        height = Self.margin * 2 + Double(layerCount) * Self.nodeHeight + Double(max(layerCount - 1, 0)) * Self.verticalGap
    }

    /// `resize[17]` → `resize`: the instances of a for_each fan-out share their template step's name.
    static func baseName(_ name: String) -> String {
        guard let bracket = name.firstIndex(of: "[") else { return name }
        return String(name[..<bracket])
    }
}
