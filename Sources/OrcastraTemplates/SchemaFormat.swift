/// The string formats an `input_schema` may name, checked by hand here (no package among the
/// ones we may use validates them):
/// - `date-time`: RFC 3339 (`2026-12-01T09:30:00Z`, `2026-12-01T09:30:00.250+01:00`), with a
///   real calendar date, hours 00–23, minutes 00–59 and seconds 00–60 (a leap second);
/// - `date`: RFC 3339 full-date (`2026-12-01`), a real calendar date;
/// - `email`: one `@`, a non-empty local part without spaces, a domain of dot-separated labels;
/// - `uuid`: RFC 4122 text, 8-4-4-4-12 hexadecimal digits (either case);
/// - `uri`: an absolute URI, a scheme (`https:`, `urn:`, `mailto:`) and no spaces or control
///   characters.
/// JSON Schema lets a validator ignore a format; Orcastra checks these and refuses any other
/// name when the template is read, so that a typo does not silently check nothing.
public enum SchemaFormat: String, Sendable, Hashable, Codable, CaseIterable {
    case dateTime = "date-time"
    case date, email, uuid, uri

    /// How a violation names the format: "must be a date-time (…)".
    var label: String {
        switch self {
        case .dateTime: "an RFC 3339 date-time"
        case .date: "an RFC 3339 date"
        case .email: "an email address"
        case .uuid: "a UUID"
        case .uri: "an absolute URI"
        }
    }

    /// Nil when `text` has this format; otherwise what is wrong, as a short phrase.
    public func problem(with text: String) -> String? {
        let bytes = Array(text.utf8)
        switch self {
        case .date:
            return bytes.count == 10 ? Self.dateProblem(bytes[...]) : "write it as YYYY-MM-DD"
        case .dateTime:
            return Self.dateTimeProblem(bytes)
        case .uuid:
            return Self.uuidProblem(bytes)
        case .email:
            return Self.emailProblem(text)
        case .uri:
            return Self.uriProblem(bytes)
        }
    }

    private static func number(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard !bytes.isEmpty, bytes.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        return bytes.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    }

    /// YYYY-MM-DD, a day that exists.
    private static func dateProblem(_ bytes: ArraySlice<UInt8>) -> String? {
        let start = bytes.startIndex
        guard bytes.count == 10, bytes[start + 4] == UInt8(ascii: "-"), bytes[start + 7] == UInt8(ascii: "-"),
              let year = number(bytes[start..<start + 4]), let month = number(bytes[start + 5..<start + 7]),
              let day = number(bytes[start + 8..<start + 10]) else { return "write it as YYYY-MM-DD" }
        guard (1...12).contains(month) else { return "month \(month) does not exist" }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard (1...days).contains(day) else { return "day \(day) does not exist in that month" }
        return nil
    }

    /// YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM); `t` and `z` are allowed, as RFC 3339 says.
    private static func dateTimeProblem(_ bytes: [UInt8]) -> String? {
        let shape = "write it as YYYY-MM-DDTHH:MM:SSZ or with an offset, like 2026-12-01T09:30:00+01:00"
        guard bytes.count >= 19 else { return shape }
        if let problem = dateProblem(bytes[0..<10]) { return problem }
        guard bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t"),
              bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
              let hour = number(bytes[11..<13]), let minute = number(bytes[14..<16]), let second = number(bytes[17..<19])
        else { return shape }
        guard hour <= 23, minute <= 59, second <= 60 else { return "the time \(hour):\(minute):\(second) does not exist" }
        var index = 19
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            let digits = bytes[index...].prefix { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
            guard !digits.isEmpty else { return "a fraction of a second needs digits after the '.'" }
            index += digits.count
        }
        let zone = bytes[index...]
        if zone.count == 1, zone.first == UInt8(ascii: "Z") || zone.first == UInt8(ascii: "z") { return nil }
        guard zone.count == 6, zone.first == UInt8(ascii: "+") || zone.first == UInt8(ascii: "-"), zone[index + 3] == UInt8(ascii: ":"),
              let zoneHour = number(zone[index + 1..<index + 3]), let zoneMinute = number(zone[index + 4..<index + 6])
        else { return "it needs a time zone: Z or an offset like +01:00" }
        guard zoneHour <= 23, zoneMinute <= 59 else { return "the offset \(String(decoding: zone, as: UTF8.self)) does not exist" }
        return nil
    }

    private static func uuidProblem(_ bytes: [UInt8]) -> String? {
        let hex: (UInt8) -> Bool = {
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
                || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains($0)
        }
        guard bytes.count == 36 else { return "write it as 8-4-4-4-12 hexadecimal digits" }
        for (index, byte) in bytes.enumerated() {
            let dash = [8, 13, 18, 23].contains(index)
            guard dash ? byte == UInt8(ascii: "-") : hex(byte) else { return "write it as 8-4-4-4-12 hexadecimal digits" }
        }
        return nil
    }

    private static func emailProblem(_ text: String) -> String? {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return "it needs exactly one '@'" }
        let local = parts[0], domain = parts[1]
        guard !local.isEmpty, local.utf8.count <= 64 else { return "the part before '@' must have 1 to 64 characters" }
        guard !text.unicodeScalars.contains(where: { $0 == " " || $0.value < 0x20 || $0.value == 0x7F }) else {
            return "it must not contain spaces or control characters"
        }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2, labels.allSatisfy({ label in
            !label.isEmpty && label.first != "-" && label.last != "-"
                && label.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" }
        }) else { return "the domain after '@' must be names separated by dots, like example.com" }
        return nil
    }

    private static func uriProblem(_ bytes: [UInt8]) -> String? {
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), colon > 0 else {
            return "it needs a scheme, like https: or urn:"
        }
        let letter: (UInt8) -> Bool = { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0 | 0x20) }
        let scheme = bytes[..<colon]
        guard letter(scheme[0]), scheme.allSatisfy({
            letter($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".")
        }) else { return "the scheme before ':' must start with a letter and hold only letters, digits, '+', '-' and '.'" }
        guard colon + 1 < bytes.count else { return "nothing follows the scheme" }
        guard !bytes.contains(where: { $0 <= 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "<") || $0 == UInt8(ascii: ">") }) else {
            return "it must not contain spaces, quotes, '<', '>' or control characters (percent-encode them)"
        }
        return nil
    }
}
