/// Graph queries over a template's steps.
///
/// Everything here is iterative (no recursion over the graph), so a
/// 10,000-step template or a 1,000-deep chain cannot exhaust the stack.
extension WorkflowTemplate {
    /// Step names so that every step comes after all of its parents; among
    /// steps that are ready at the same time, declaration order wins, so the
    /// order is stable across runs and matches how the file reads.
    ///
    /// Steps caught in a cycle (impossible for a template built by
    /// ``TemplateParser``, which refuses cycles) are left out.
    public func topologicalOrder() -> [String] {
        DAGIndex(steps: steps).topologicalOrder().order.map { steps[$0].name }
    }

    /// Steps without parents: the ones a new task starts with, in declaration order.
    public var roots: [String] {
        steps.filter { $0.dependsOn.isEmpty }.map(\.name)
    }

    /// Steps that list `name` in their `depends_on`, in declaration order.
    public func children(of name: String) -> [String] {
        steps.filter { $0.dependsOn.contains(name) }.map(\.name)
    }

    /// Steps with no children: the task is complete when these are.
    public var leaves: [String] {
        let parents = Set(steps.flatMap(\.dependsOn))
        return steps.filter { !parents.contains($0.name) }.map(\.name)
    }

    /// A person-readable picture of the DAG for `orcastra template show`:
    /// one line per step in topological order, with its parents, what it
    /// runs and its retry/timeout policy, columns aligned.
    ///
    ///     examples/diamond@1.0.0 (4 steps)
    ///       start                    handler: examples.start   retry 3×exponential  timeout 5m
    ///       left   ← start           handler: examples.left    retry 3×exponential  timeout 5m
    public func renderDAG() -> String {
        let ordered = topologicalOrder().compactMap { step(named: $0) }
        let rows: [[String]] = ordered.map { step in
            [
                step.name,
                step.dependsOn.isEmpty ? "" : "← " + step.dependsOn.joined(separator: ", "),
                Self.render(step.action),
                Self.render(step.retry),
                "timeout \(step.timeout)" + (step.namespace == namespace ? "" : "  on \(step.namespace)"),
            ]
        }
        var widths = [Int](repeating: 0, count: 5)
        for row in rows {
            for (column, cell) in row.enumerated() {
                // Wide cells (a step with hundreds of parents) do not widen every other line.
                widths[column] = max(widths[column], min(cell.count, 40))
            }
        }
        let stepCount = steps.count == 1 ? "1 step" : "\(steps.count) steps"
        var lines = ["\(reference) (\(stepCount))"]
        for row in rows {
            var line = "  "
            for (column, cell) in row.enumerated() {
                let isLast = column == row.count - 1
                line += isLast ? cell : cell.padding(to: widths[column]) + "  "
            }
            lines.append(line.trimmingTrailingSpaces())
        }
        return lines.joined(separator: "\n")
    }

    static func render(_ action: StepAction) -> String {
        switch action {
        case .handler(let name):
            return "handler: \(name)"
        case .command(let command):
            var text = command.argv.map(shellQuoted).joined(separator: " ")
            if text.count > 48 { text = String(text.prefix(47)) + "…" }
            return "command: \(text)"
        case .workflow(let reference):
            return "workflow: \(reference)"
        }
    }

    /// A word as a POSIX shell reads it back: bare when it holds only characters no shell treats
    /// specially, else in single quotes (a quote inside written `'\''`), or as `$'…'` when it
    /// holds a line break or another control character.
    public static func shellQuoted(_ word: String) -> String {
        if word.isEmpty { return "''" }
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-")
        if word.allSatisfy(safe.contains) { return word }
        if word.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            var escaped = ""
            for scalar in word.unicodeScalars {
                switch scalar {
                case "\\": escaped += "\\\\"
                case "'": escaped += "\\'"
                case "\n": escaped += "\\n"
                case "\t": escaped += "\\t"
                case "\r": escaped += "\\r"
                default:
                    if scalar.properties.generalCategory == .control {
                        escaped += String(format: "\\x%02x", scalar.value)
                    } else {
                        escaped.unicodeScalars.append(scalar)
                    }
                }
            }
            return "$'" + escaped + "'"
        }
        return "'" + word.replacingAll("'", with: "'\\''") + "'"
    }

    static func render(_ retry: RetryPolicy) -> String {
        if retry.maxAttempts <= 1 { return "no retry" }
        switch retry.backoff {
        case .none: return "retry \(retry.maxAttempts)× immediately"
        case .fixed: return "retry \(retry.maxAttempts)×fixed \(retry.initialDelay)"
        case .exponential: return "retry \(retry.maxAttempts)×exponential \(retry.initialDelay)..\(retry.maxDelay)"
        }
    }
}

extension String {
    fileprivate func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }

    fileprivate func trimmingTrailingSpaces() -> String {
        var result = self
        while result.last == " " { result.removeLast() }
        return result
    }

    fileprivate func replacingAll(_ target: Character, with replacement: String) -> String {
        var result = ""
        for character in self {
            if character == target { result += replacement } else { result.append(character) }
        }
        return result
    }
}

/// Steps as integers with parent/child adjacency lists, shared by the
/// public queries and by the parser's cycle check.
struct DAGIndex {
    /// parents[i]: indices of the steps that step i depends on (unknown names and self-references dropped).
    var parents: [[Int]]
    var children: [[Int]]

    init(names: [String], dependsOn: [[String]]) {
        var index: [String: Int] = [:]
        for (i, name) in names.enumerated() where index[name] == nil {
            index[name] = i
        }
        parents = Array(repeating: [], count: names.count)
        children = Array(repeating: [], count: names.count)
        for (child, deps) in dependsOn.enumerated() {
            var seen = Set<Int>()
            for dep in deps {
                guard let parent = index[dep], parent != child, seen.insert(parent).inserted else { continue }
                parents[child].append(parent)
                children[parent].append(child)
            }
        }
    }

    init(steps: [StepDefinition]) {
        self.init(names: steps.map(\.name), dependsOn: steps.map(\.dependsOn))
    }

    /// Kahn's algorithm with a min-heap on declaration index, so ready steps
    /// come out in declaration order. `blocked` holds every step that never
    /// became ready: members of cycles and everything downstream of one.
    func topologicalOrder() -> (order: [Int], blocked: [Int]) {
        var waiting = parents.map(\.count)
        var heap = MinHeap()
        for (i, count) in waiting.enumerated() where count == 0 { heap.push(i) }
        var order: [Int] = []
        order.reserveCapacity(parents.count)
        while let next = heap.pop() {
            order.append(next)
            for child in children[next] {
                waiting[child] -= 1
                if waiting[child] == 0 { heap.push(child) }
            }
        }
        let blocked = waiting.indices.filter { waiting[$0] > 0 }
        return (order, blocked)
    }

    /// Distinct cycles, each as step indices in execution order (parent
    /// before child), starting with its earliest-declared step and not
    /// repeating it at the end.
    ///
    /// Every blocked step has a blocked parent, so walking parent links from
    /// one must eventually revisit a step: that closes a cycle. A walk that
    /// runs into an earlier walk stops, so each step is visited once: O(n + e).
    func cycles() -> [[Int]] {
        let blocked = topologicalOrder().blocked
        let isBlocked = Set(blocked)
        var walkOf = [Int: Int]()  // step → walk number that visited it
        var result: [[Int]] = []
        for (walk, start) in blocked.enumerated() where walkOf[start] == nil {
            var path: [Int] = []
            var position: [Int: Int] = [:]
            var current = start
            while true {
                if let seenIn = walkOf[current] {
                    if seenIn == walk, let at = position[current] {
                        var cycle = Array(path[at...]).reversed() as [Int]
                        let first = cycle.indices.min(by: { cycle[$0] < cycle[$1] })!
                        cycle = Array(cycle[first...] + cycle[..<first])
                        result.append(cycle)
                    }
                    break
                }
                walkOf[current] = walk
                position[current] = path.count
                path.append(current)
                guard let parent = parents[current].first(where: { isBlocked.contains($0) }) else { break }
                current = parent
            }
        }
        return result.sorted { $0[0] < $1[0] }
    }
}

/// A binary min-heap of step indices; just enough for Kahn's algorithm.
struct MinHeap {
    private var items: [Int] = []

    mutating func push(_ value: Int) {
        items.append(value)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Int? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < items.count, items[left] < items[smallest] { smallest = left }
                if right < items.count, items[right] < items[smallest] { smallest = right }
                if smallest == parent { break }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return top
    }
}
