import Foundation

/// What the figures were measured on.
enum Machine {
    static func describe() -> [String: String] {
        var facts: [String: String] = ["cpus": "\(ProcessInfo.processInfo.activeProcessorCount)"]
        facts["memory"] = String(format: "%.0f GiB", Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824)
        if let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let model = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("model name") }) {
            facts["cpu"] = model.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) }
        }
        return facts
    }

    static func buildKind() -> String {
        #if DEBUG
        return "debug"
        #else
        return "release"
        #endif
    }
}
