import OrcastraTemplates

/// One of the six fields of a cron expression: its range, its names, and the parser of its text
/// into a bit set (bit n set when value n matches).
struct CronField: Sendable {
    let name: String
    let range: ClosedRange<Int>
    /// Lowercase three-letter names, the first for `range.lowerBound` (months) or 0 (weekdays).
    let names: [String]
    let example: String

    static let second = CronField(name: "second", range: 0...59, names: [], example: "0, */15 or 0-29")
    static let minute = CronField(name: "minute", range: 0...59, names: [], example: "0, */15 or 0-29")
    static let hour = CronField(name: "hour", range: 0...23, names: [], example: "9, 9-17 or */6")
    static let dayOfMonth = CronField(name: "day-of-month", range: 1...31, names: [], example: "1, 1,15 or 1-7")
    static let month = CronField(name: "month", range: 1...12,
                                 names: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
                                 example: "1, jan-mar or */3")
    /// 0 and 7 are both Sunday; 7 is folded into bit 0 after parsing.
    static let dayOfWeek = CronField(name: "day-of-week", range: 0...7, names: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
                                     example: "1-5, mon-fri or sat,sun")

    /// Every value of the range, as bits.
    var fullMask: UInt64 {
        name == "day-of-week" ? 0x7F : (UInt64.max >> (63 - range.upperBound)) & ~((1 << UInt64(range.lowerBound)) - 1)
    }

    /// Parses `*`, `N`, `N-M`, any of these with `/STEP` (`N/STEP` means `N-max/STEP`), and lists of
    /// them separated by commas. Names are accepted wherever a number is, in any case.
    func parse(_ text: String) throws(CronError) -> UInt64 {
        var mask: UInt64 = 0
        for item in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            mask |= try parseItem(item, field: text)
        }
        if name == "day-of-week", mask & (1 << 7) != 0 {
            mask = (mask & ~(1 << 7)) | 1
        }
        return mask
    }

    private func parseItem(_ item: String, field: String) throws(CronError) -> UInt64 {
        guard !item.isEmpty else {
            throw error(field, "\(name) field \"\(field)\" has an empty item; separate values with single commas, like \(example)")
        }
        let parts = item.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        var step = 1
        if parts.count == 2 {
            guard let value = Int(parts[1]), parts[1].allSatisfy(\.isASCII) else {
                throw error(field, "\(name) field \"\(field)\": the step \"\(parts[1])\" is not a whole number")
            }
            guard value >= 1 else { throw error(field, "\(name) field \"\(field)\": a step must be at least 1") }
            step = value
        }
        let lower: Int
        var upper: Int
        if parts[0] == "*" {
            lower = range.lowerBound
            upper = name == "day-of-week" ? 6 : range.upperBound
        } else {
            let bounds = parts[0].split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            lower = try value(bounds[0], field: field, isUpperBound: false)
            if bounds.count == 2 {
                upper = try value(bounds[1], field: field, isUpperBound: true)
                guard upper >= lower else {
                    throw error(field, "\(name) field \"\(field)\": the range \(parts[0]) goes backwards; write it as two ranges, like \(bounds[0])-\(name == "day-of-week" ? 6 : range.upperBound),\(range.lowerBound)-\(bounds[1])")
                }
            } else {
                // `N/STEP` runs from N to the end of the range, as in croniter and most crons.
                upper = parts.count == 2 ? (name == "day-of-week" ? max(lower, 6) : range.upperBound) : lower
            }
        }
        var mask: UInt64 = 0
        for value in stride(from: lower, through: upper, by: step) { mask |= 1 << UInt64(value) }
        return mask
    }

    /// A number in range or a name; `sun` as the end of a range is 7, so `mon-sun` works.
    private func value(_ text: String, field: String, isUpperBound: Bool) throws(CronError) -> Int {
        if !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) {
            guard text.count <= 4, let number = Int(text), range.contains(number) else {
                let whole = text == field ? "\(name) field \"\(field)\"" : "\(name) field \"\(field)\": \(text)"
                throw error(field, "\(whole) is out of range \(range.lowerBound)–\(range.upperBound)")
            }
            return number
        }
        let lowered = text.lowercased()
        if let index = names.firstIndex(of: lowered) {
            if name == "month" { return index + 1 }
            return index == 0 && isUpperBound ? 7 : index
        }
        if text.isEmpty {
            throw error(field, "\(name) field \"\(field)\" has a range with a missing \(isUpperBound ? "end" : "start"); write it like \(example)")
        }
        var message = "\(name) field \"\(field)\": \"\(text)\" is not a number"
        if names.isEmpty {
            message += " in \(range.lowerBound)–\(range.upperBound)"
        } else {
            message += " in \(range.lowerBound)–\(range.upperBound) or a name (\(names.first!)…\(names.last!))"
            if let close = Suggestions.closest(to: lowered, among: names, limit: 1).first { message += "; did you mean \(close)?" }
        }
        if ["l", "w", "?"].contains(lowered) || lowered.contains("#") || lowered.hasSuffix("w") || lowered.hasSuffix("l") {
            message += " (L, W, # and ? are not supported; see docs/schedules.md)"
        }
        throw error(field, message)
    }

    private func error(_ text: String, _ message: String) -> CronError {
        CronError(field: name, text: text, message: message)
    }
}

/// "Did you mean" candidates by edit distance, closest first, ties in the candidates' order.
enum Suggestions {
    static func closest(to word: String, among candidates: [String], limit: Int, maximumDistance: Int? = nil) -> [String] {
        let allowed = maximumDistance ?? (word.count <= 3 ? 1 : max(2, min(3, word.count / 3)))
        let lowered = word.lowercased()
        return candidates.enumerated()
            .map { (offset: $0.offset, candidate: $0.element, distance: EditDistance.distance(lowered, $0.element.lowercased())) }
            .filter { $0.distance <= allowed }
            .sorted { ($0.distance, $0.offset) < ($1.distance, $1.offset) }
            .prefix(limit)
            .map(\.candidate)
    }
}
