import Foundation

/// One measured figure, its target and how it compares; printed as a table and written as JSON.
struct Figure: Codable, Sendable {
    var measure: String
    var value: Double
    var unit: String
    var target: String?
    var met: Bool?
    var note: String?
}

struct BenchmarkReport: Codable, Sendable {
    var machine: [String: String] = [:]
    var settings: [String: String] = [:]
    var figures: [Figure] = []
    var plans: [String: String] = [:]

    mutating func add(_ measure: String, _ value: Double, _ unit: String, target: String? = nil, met: Bool? = nil, note: String? = nil) {
        figures.append(Figure(measure: measure, value: value, unit: unit, target: target, met: met, note: note))
        let shown = value.isNaN ? "n/a" : (value >= 100 ? String(format: "%.0f", value) : String(format: "%.2f", value))
        let verdict = met.map { $0 ? "met" : "NOT met" } ?? ""
        print("  \(measure.padding(toLength: 58, withPad: " ", startingAt: 0)) \(shown.leftPadded(10)) \(unit.padding(toLength: 8, withPad: " ", startingAt: 0)) \((target ?? "").padding(toLength: 12, withPad: " ", startingAt: 0)) \(verdict)\(note.map { "  (\($0))" } ?? "")")
    }

    func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: path))
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
