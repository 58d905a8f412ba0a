import Foundation
import OrcastraTemplates

/// Time zones by IANA name, as schedules name them.
public enum ScheduleTimeZone {
    /// The zone for an IANA name such as `Europe/Berlin` or `UTC`. A name that differs only in
    /// case is accepted (`europe/berlin`), since no two zones differ only so.
    ///
    /// - Throws: ``ScheduleTimeZoneError`` with up to three close known names.
    public static func named(_ name: String) throws(ScheduleTimeZoneError) -> TimeZone {
        let lowered = name.lowercased()
        if ["utc", "gmt", "z", "etc/utc", "etc/gmt", "universal", "zulu"].contains(lowered) { return ScheduleDefinition.utc }
        if isZoneName(name), let zone = TimeZone(identifier: name) { return zone }
        // Linux's list lacks some zones (Asia/Kolkata), so the usual capitalisation is tried too.
        if let match = candidates.first(where: { $0.lowercased() == lowered }) ?? Optional(capitalized(name)),
           isZoneName(match), let zone = TimeZone(identifier: match) {
            return zone
        }
        throw ScheduleTimeZoneError(name: name, suggestions: isZoneName(name) ? suggestions(for: name, among: candidates) : [])
    }

    /// `UTC` for the zero-offset zone (Foundation calls it GMT), else the IANA identifier.
    public static func name(of zone: TimeZone) -> String {
        ["GMT", "UTC", "Etc/UTC", "Etc/GMT"].contains(zone.identifier) ? "UTC" : zone.identifier
    }

    /// IANA-shaped: no custom `GMT+5` or `+02:00` IDs, which ICU accepts but PostgreSQL reads with
    /// the opposite sign (POSIX).
    static func isZoneName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, ("A"..."Z").contains(first) || ("a"..."z").contains(first),
              !name.contains(":") else { return false }
        let upper = name.uppercased()
        return !(upper.hasPrefix("GMT+") || upper.hasPrefix("GMT-") || upper.hasPrefix("UTC+") || upper.hasPrefix("UTC-"))
    }

    /// `america/new_york` → `America/New_York`.
    static func capitalized(_ name: String) -> String {
        var result = ""
        var startOfWord = true
        for character in name {
            result += startOfWord ? character.uppercased() : character.lowercased()
            startOfWord = character == "/" || character == "_" || character == "-"
        }
        return result
    }

    /// Foundation's list, plus the zones of the system's zone1970.tab (Linux's list lacks some).
    static let candidates: [String] = {
        var names = Set(TimeZone.knownTimeZoneIdentifiers)
        names.insert("UTC")
        if let table = try? String(contentsOfFile: "/usr/share/zoneinfo/zone1970.tab", encoding: .utf8) {
            for line in table.split(separator: "\n") where !line.hasPrefix("#") {
                let columns = line.split(separator: "\t")
                if columns.count >= 3 { names.insert(String(columns[2])) }
            }
        }
        return names.sorted()
    }()

    /// Names ending in the same city first (`Berlin` → `Europe/Berlin`), then the closest by
    /// edit distance over the whole name and over the city alone.
    static func suggestions(for name: String, among known: [String]) -> [String] {
        let lowered = name.lowercased()
        let city = lowered.split(separator: "/").last.map(String.init) ?? lowered
        func lastComponent(_ identifier: String) -> String {
            identifier.lowercased().split(separator: "/").last.map(String.init) ?? identifier.lowercased()
        }
        var scored: [(name: String, score: Int)] = []
        for identifier in known {
            let whole = EditDistance.distance(lowered, identifier.lowercased())
            let byCity = EditDistance.distance(city, lastComponent(identifier)) + (city == lowered ? 0 : 1)
            let score = min(whole, byCity)
            if score <= max(2, min(4, city.count / 3)) { scored.append((identifier, score)) }
        }
        return scored.sorted { ($0.score, $0.name) < ($1.score, $1.name) }.prefix(3).map(\.name)
    }
}

/// A time zone name that is not known.
public struct ScheduleTimeZoneError: Error, Sendable, Equatable, CustomStringConvertible {
    public var name: String
    /// Up to three known names close to `name`, closest first.
    public var suggestions: [String]

    public init(name: String, suggestions: [String]) {
        self.name = name
        self.suggestions = suggestions
    }

    /// `unknown time zone "Europe/Berln"; did you mean Europe/Berlin?`
    public var description: String {
        var text = "unknown time zone \"\(name)\""
        switch suggestions.count {
        case 0: text += "; use an IANA name such as UTC, Europe/Berlin or America/New_York"
        case 1: text += "; did you mean \(suggestions[0])?"
        default: text += "; did you mean \(suggestions.dropLast().joined(separator: ", ")) or \(suggestions.last!)?"
        }
        return text
    }

    public var message: String { description }
}
