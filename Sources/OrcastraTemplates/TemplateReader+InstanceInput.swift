import Yams

extension TemplateReader {
    /// `instance_input: [context, parents]` — what a fan-out instance receives besides its item
    /// and index. Only with `for_each`; each entry once, from the known parts (did-you-mean).
    func readInstanceInput(_ entry: (key: Node, value: Node), hasForEach: Bool, owner: String, path: String,
                           into step: inout RawStep) {
        let names = InstanceInputPart.allCases.map(\.rawValue)
        guard hasForEach else {
            session.report(entry.key, path: path,
                           "\(owner) has instance_input but no for_each; instance_input says what each instance of a fan-out receives: add for_each or remove instance_input")
            return
        }
        if ParseSession.isNull(entry.value) { return }
        guard let list = session.sequence(entry.value, path: path, label: "instance_input",
                                          example: "instance_input: [context, parents]") else { return }
        var parts: [InstanceInputPart] = []
        for (i, element) in list.enumerated() {
            let elementPath = ParseSession.path(path, index: i)
            guard let text = session.text(element, path: elementPath, label: "an instance_input entry") else { continue }
            guard let part = InstanceInputPart(rawValue: text) else {
                session.report(element, path: elementPath,
                               "unknown instance_input entry '\(text)'\(EditDistance.didYouMean(text, among: names)); use \(names.joined(separator: " and/or ")) (an instance always receives its item and index)")
                continue
            }
            if parts.contains(part) {
                session.report(element, path: elementPath, "instance_input lists '\(text)' twice; keep one")
                continue
            }
            parts.append(part)
        }
        step.instanceInput = parts
    }
}
