import Foundation
import OrcastraTemplates
import Testing

/// Random damage to real templates: the parser must answer every input with a template or with a
/// `TemplateValidationError` whose issues all point somewhere (line ≥ 1, column ≥ 1) and say
/// something. Deterministic: a failure names the seed and mutation number, which replay it exactly.
@Suite(.timeLimit(.minutes(5))) struct TemplateFuzzTests {
    static let seed: UInt64 = 0x0BAD_1A9C_7_2026
    static let mutationCount = 2_000

    /// Text YAML treats specially, or that breaks naive scanners.
    static let hostile: [String] = [
        ": ", "- ", "[", "]", "{", "}", "&a ", "*a", "!", "!!binary ", "!<tag:x> ", "|", "|-", ">", ">+", "%YAML 1.2",
        "%TAG ! tag:x,2026:", "#", "'", "\"", "\\", "? ", "---", "...", "<<: *a", "&a [*a]", "@", "`", ",", "\t", "\t- ",
        "\u{0}", "\u{1}", "\u{7}", "\u{8}", "\u{1B}[31m", "\u{7F}", "\u{FEFF}", "\r", "\r\n", "\u{85}", "\u{2028}", "\u{2029}",
        "𝄞", "ünï", "中文", "🎻", "\u{202E}", "e\u{301}", "\u{200B}", "Ω≈ç√∫", "ﷺ",
        "99999999999999999999999999999", "-9223372036854775809", "1e309", "-0", "0x7fffffffffffffff", "0o777", ".inf", "-.inf",
        ".nan", "1_000", "0.0000000000000000000000001", "~", "null", "yes", "no", "on", "off", "y", "NaN",
        "x'; DROP TABLE orcastra.tasks;--", "$1", "%s%s%s%n", "{{template}}", "${HOME}",
    ]

    /// Values to put after a `key: ` (or instead of a list element).
    static let hostileValues: [String] = [
        "99999999999999999999", "-1", "0", "1e309", "1.5", "[]", "{}", "[[[[]]]]", "null", "~", "true", "''", "\"\"",
        "*nope", "&x 3", "!!str 3", "!!int x", "!!float x", "!!map []", "!!seq {}", "!!timestamp 2026-13-45", "0s", "-5m",
        "999999999h", "1h1h", "1.0.0+build", "1.0.0-", "01.02.03", "a → b", "\"\\u0000\"", "\"\\uD800\"", "|\n  x",
        "[a, b, a]", "{name: x, handler: y}",
    ]

    @Test func randomMutationsNeverCrashOrHang() async throws {
        let seeds = try Repository.seedTemplates()
        #expect(seeds.count >= 6)
        let start = ContinuousClock.now
        let report = await onThread(timeout: .seconds(60)) { Self.fuzz(seeds) }
        guard let report else {
            Issue.record("the fuzz run did not finish within 60 s: the parser hangs on some input")
            return
        }
        print("template fuzz: \(Self.mutationCount) mutations in \(seconds(since: start)): \(report.accepted) accepted, \(report.refused) refused, slowest \(report.slowest.milliseconds) ms (#\(report.slowest.index))")
        for problem in report.problems.values.sorted().prefix(10) { Issue.record(Comment(rawValue: problem)) }
        #expect(report.problems.isEmpty)
        #expect(report.refused > Self.mutationCount / 4, "most damage should be caught")
        // A hang detector, not a speed test: other suites share the two cores while this runs.
        #expect(report.slowest.milliseconds < 10_000)
    }

    struct Report: Sendable {
        var accepted = 0
        var refused = 0
        /// One example (the shortest input) per kind of problem.
        var problems: [String: String] = [:]
        var slowest: (milliseconds: Int, index: Int) = (0, 0)
    }

    static func fuzz(_ seeds: [(name: String, text: String)]) -> Report {
        var generator = SeededGenerator(seed: seed)
        var report = Report()
        for index in 0..<mutationCount {
            let base = seeds[Int(generator.next() % UInt64(seeds.count))]
            var text = base.text
            // One to four mutations on top of each other.
            let rounds = 1 + Int(generator.next() % 4)
            var applied: [String] = []
            for _ in 0..<rounds {
                applied.append(mutate(&text, &generator))
            }
            let label = "mutation #\(index) (seed \(seed), \(base.name), \(applied.joined(separator: " + ")))"
            let began = ContinuousClock.now
            let problems = check(text, file: "fuzz-\(index).yaml", label: label, report: &report)
            let took = ContinuousClock.now - began
            let milliseconds = Int(took.components.seconds * 1000 + took.components.attoseconds / 1_000_000_000_000_000)
            if milliseconds > report.slowest.milliseconds { report.slowest = (milliseconds, index) }
            for (kind, example) in problems where (report.problems[kind]?.count ?? .max) > example.count {
                report.problems[kind] = example
            }
        }
        return report
    }

    /// Parses `text` and returns what is wrong with the parser's answer.
    /// Problems keyed by their kind, each with an example that replays it.
    static func check(_ text: String, file: String, label: String, report: inout Report) -> [(String, String)] {
        do {
            _ = try TemplateParser.parse(yaml: text, file: file)
            report.accepted += 1
            return []
        } catch {
            report.refused += 1
            var problems: [(String, String)] = []
            let example = "\(label)\n--- input (\(text.utf8.count) bytes) ---\n\(text.prefix(600))"
            if error.issues.isEmpty { problems.append(("no issues", "refused with no issues: \(example)")) }
            for issue in error.issues {
                if issue.line < 1 || issue.column < 1 || issue.message.trimmingCharacters(in: .whitespaces).isEmpty || issue.file != file {
                    let kind = String(issue.message.prefix(40))
                    problems.append((kind, "issue without a position or message: \(issue.line):\(issue.column) '\(issue.message.prefix(300))' in \(example)"))
                }
            }
            return problems
        }
    }

    static func random<T>(_ items: [T], _ generator: inout SeededGenerator) -> T {
        items[Int(generator.next() % UInt64(items.count))]
    }

    /// Applies one random mutation and says which.
    static func mutate(_ text: inout String, _ generator: inout SeededGenerator) -> String {
        var lines = text.components(separatedBy: "\n")
        let line = Int(generator.next() % UInt64(max(lines.count, 1)))
        func joined() -> String { lines.joined(separator: "\n") }
        switch generator.next() % 13 {
        case 0:
            if lines.count > 1 { lines.remove(at: line) }
            text = joined(); return "delete line \(line + 1)"
        case 1:
            lines.insert(lines[line], at: line)
            text = joined(); return "duplicate line \(line + 1)"
        case 2:
            let other = Int(generator.next() % UInt64(lines.count))
            lines.swapAt(line, other)
            text = joined(); return "swap lines \(line + 1) and \(other + 1)"
        case 3:
            var scalars = Array(text.unicodeScalars)
            guard !scalars.isEmpty else { return "flip nothing" }
            let at = Int(generator.next() % UInt64(scalars.count))
            scalars[at] = Unicode.Scalar(UInt8(32 + generator.next() % 95))
            text = String(String.UnicodeScalarView(scalars)); return "flip character \(at)"
        case 4, 5:
            let token = random(hostile, &generator)
            var scalars = Array(text.unicodeScalars)
            let at = Int(generator.next() % UInt64(scalars.count + 1))
            scalars.insert(contentsOf: token.unicodeScalars, at: at)
            text = String(String.UnicodeScalarView(scalars)); return "insert \(token.debugDescription) at \(at)"
        case 6:
            lines[line] = "\t" + lines[line]
            text = joined(); return "tab before line \(line + 1)"
        case 7:
            let length = 10_000 + Int(generator.next() % 90_000)
            let filler = random(["a", "x: ", "[", "- ", "🎻", " "], &generator)
            lines[line] += String(repeating: filler, count: length / filler.utf8.count)
            text = joined(); return "long line \(line + 1) of \(filler.debugDescription) ×\(length / filler.utf8.count)"
        case 8:
            let depth = 1 + Int(generator.next() % 200)
            let open = generator.next() % 2 == 0 ? "[" : "{"
            lines.insert("deep: " + String(repeating: open, count: depth), at: line)
            text = joined(); return "unclosed nesting \(open) ×\(depth) at line \(line + 1)"
        case 9:
            let depth = 1 + Int(generator.next() % 200)
            let nested = String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth)
            lines.insert("description: \(nested)", at: line)
            text = joined(); return "closed nesting ×\(depth) at line \(line + 1)"
        case 10, 11:
            // Replace the value of a `key: value` line.
            let candidates = lines.indices.filter { lines[$0].contains(": ") }
            guard !candidates.isEmpty else { return "no value to replace" }
            let target = random(candidates, &generator)
            let value = random(hostileValues, &generator)
            let key = lines[target].components(separatedBy: ": ")[0]
            lines[target] = "\(key): \(value)"
            text = joined(); return "value of line \(target + 1) → \(value.debugDescription)"
        default:
            let control = Unicode.Scalar(UInt8(generator.next() % 32))
            var scalars = Array(text.unicodeScalars)
            let at = Int(generator.next() % UInt64(scalars.count + 1))
            scalars.insert(control, at: at)
            text = String(String.UnicodeScalarView(scalars)); return "control U+\(String(control.value, radix: 16)) at \(at)"
        }
    }
}
