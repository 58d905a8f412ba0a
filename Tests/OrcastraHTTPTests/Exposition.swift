import Foundation

/// Prometheus text exposition, parsed for the tests: samples by name and labels, HELP and TYPE lines.
struct Exposition {
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    var samples: [Sample] = []
    var help: [String: String] = [:]
    var types: [String: String] = [:]

    init(_ text: String) {
        for line in text.split(separator: "\n").map(String.init) where !line.isEmpty {
            if line.hasPrefix("# HELP ") {
                let rest = line.dropFirst(7)
                let space = rest.firstIndex(of: " ") ?? rest.endIndex
                help[String(rest[..<space])] = String(rest[space...]).trimmingCharacters(in: .whitespaces)
            } else if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                if parts.count >= 4 { types[String(parts[2])] = String(parts[3]) }
            } else if !line.hasPrefix("#"), let sample = Self.sample(line) {
                samples.append(sample)
            }
        }
    }

    private static func sample(_ line: String) -> Sample? {
        var labels: [String: String] = [:]
        let name: String
        let valueText: Substring
        if let open = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}") {
            name = String(line[..<open])
            var rest = line[line.index(after: open)..<close]
            while let equals = rest.firstIndex(of: "=") {
                let key = rest[..<equals].trimmingCharacters(in: CharacterSet(charactersIn: ", "))
                var index = rest.index(equals, offsetBy: 2)  // past ="
                var value = ""
                while index < rest.endIndex, rest[index] != "\"" {
                    if rest[index] == "\\" { index = rest.index(after: index) }
                    value.append(rest[index])
                    index = rest.index(after: index)
                }
                labels[key] = value
                rest = index < rest.endIndex ? rest[rest.index(after: index)...] : ""
            }
            valueText = line[line.index(after: close)...]
        } else {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2 else { return nil }
            name = String(parts[0])
            valueText = parts[1]
        }
        guard let value = Double(valueText.trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") else { return nil }
        return Sample(name: name, labels: labels, value: value)
    }

    /// The sum of the samples named `name` whose labels include `matching`.
    func sum(_ name: String, _ matching: [String: String] = [:]) -> Double {
        samples.filter { sample in sample.name == name && matching.allSatisfy { sample.labels[$0.key] == $0.value } }
            .reduce(0) { $0 + $1.value }
    }

    /// Whether a sample named `name` with labels including `matching` exists.
    func has(_ name: String, _ matching: [String: String] = [:]) -> Bool {
        samples.contains { sample in sample.name == name && matching.allSatisfy { sample.labels[$0.key] == $0.value } }
    }
}
