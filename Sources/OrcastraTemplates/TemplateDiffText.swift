/// `orcastra template diff` for people.
extension TemplateDiff {
    /// A header like diff's, then what changed outside the steps (`~`), steps added (`+`), removed
    /// (`-`) and changed (`~`, one field per line), and a count:
    ///
    ///     --- shop/checkout@1.0.0
    ///     +++ shop/checkout@1.1.0
    ///     + step notify: handler: shop.notify, depends_on: [ship]
    ///     ~ step charge
    ///         retry.max_attempts: 3 → 5
    ///         timeout: 5m → 30s
    ///     1 step added, 0 removed, 1 changed.
    ///
    /// Durations read as in templates (`timeout: 5m`, not `timeout_ms: 300000`); names bare, other
    /// values as JSON; `(none)` where a side lacks the field. `added` describes an added step.
    public func rendered(added: (String) -> String?) -> String {
        if isIdentical { return "\(from) and \(to) have the same definition." }
        var lines = ["--- \(from)", "+++ \(to)"]
        lines += changes.map { "~ " + Self.render($0) }
        lines += stepsAdded.map { name in "+ step \(name)" + (added(name).map { ": " + $0 } ?? "") }
        lines += stepsRemoved.map { "- step \($0)" }
        for step in stepsChanged {
            lines.append("~ step \(step.step)")
            lines += step.changes.map { "    " + Self.render($0) }
        }
        var summary = "\(stepsAdded.count) \(stepsAdded.count == 1 ? "step" : "steps") added, \(stepsRemoved.count) removed, \(stepsChanged.count) changed"
        if !changes.isEmpty { summary += "; \(changes.count) \(changes.count == 1 ? "change" : "changes") outside the steps" }
        lines.append(summary + ".")
        return lines.joined(separator: "\n")
    }

    /// `field: before → after`.
    static func render(_ change: Change) -> String {
        let last = change.field.split(separator: ".").last.map(String.init) ?? change.field
        let isDuration = last.hasSuffix("_ms")
        let label = isDuration ? String(change.field.dropLast(3)) : change.field
        let isName = ["handler", "namespace", "name", "depends_on", "step_order"].contains(last)
        func value(_ value: JSONValue?) -> String {
            switch value {
            case nil: return "(none)"
            case .number(let number)? where isDuration:
                return number.int64Value.map { TemplateDuration(milliseconds: $0).description } ?? number.description
            case .string(let text)? where isName: return text
            case .array(let items)? where isName:
                return "[" + items.map { item in if case .string(let text) = item { text } else { item.jsonText } }.joined(separator: ", ") + "]"
            case let other?: return other.jsonText
            }
        }
        return "\(label): \(value(change.from)) → \(value(change.to))"
    }
}

extension WorkflowTemplate {
    /// One line about a step for `template diff`: what it runs, its parents, and its worker pool
    /// when it is not the template's.
    public func summary(ofStep name: String) -> String? {
        guard let step = step(named: name) else { return nil }
        var parts = [Self.render(step.action)]
        if !step.dependsOn.isEmpty { parts.append("depends_on: [\(step.dependsOn.joined(separator: ", "))]") }
        if step.namespace != namespace { parts.append("namespace: \(step.namespace)") }
        return parts.joined(separator: ", ")
    }
}
