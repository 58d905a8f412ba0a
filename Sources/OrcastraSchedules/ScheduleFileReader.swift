import Foundation
import OrcastraTemplates
import Yams

/// Reads schedule files: one schedule as a mapping, or several under `schedules:`.
///
///     schedules:
///       - name: nightly-report
///         template: reports/nightly@1.2.0
///         cron: "30 2 * * *"
///         timezone: Europe/Berlin
///
/// Like templates, every problem of a file is collected, each at its line and column with the
/// path of its key (`schedules[2].cron`), so one run shows them all.
public enum ScheduleFileReader {
    public static let keys = ["name", "template", "cron", "timezone", "start", "end", "context", "catch_up", "overlap", "priority", "paused"]

    /// - Throws: ``ScheduleFileError`` with every issue; `isMissingFile` when the path does not exist.
    public static func read(path: String) throws(ScheduleFileError) -> [ScheduleDefinition] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ScheduleFileError(issues: [TemplateIssue(file: path, line: 0, column: 0, path: "", message: "no such file or directory; check the path")],
                                    isMissingFile: true)
        }
        guard !isDirectory.boolValue else {
            throw ScheduleFileError(issues: [TemplateIssue(file: path, line: 0, column: 0, path: "", message: "is a folder; name the schedule files in it")])
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ScheduleFileError(issues: [TemplateIssue(file: path, line: 0, column: 0, path: "", message: "cannot be read; check that it is readable")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ScheduleFileError(issues: [TemplateIssue(file: path, line: 0, column: 0, path: "", message: "is not UTF-8 text; save it as UTF-8")])
        }
        return try read(text: text, file: path)
    }

    /// - Parameter file: how to name the file in messages.
    public static func read(text: String, file: String) throws(ScheduleFileError) -> [ScheduleDefinition] {
        var reader = Reader(file: file)
        let schedules = reader.readFile(text)
        guard reader.issues.isEmpty else {
            throw ScheduleFileError(issues: reader.issues.enumerated().sorted { a, b in
                (a.element.line, a.element.column, a.offset) < (b.element.line, b.element.column, b.offset)
            }.map(\.element))
        }
        return schedules
    }
}

/// Every problem of one schedule file (or of a path that is not one).
public struct ScheduleFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// In file order.
    public var issues: [TemplateIssue]
    /// The path does not exist (the CLI exits 66 rather than 65).
    public var isMissingFile: Bool

    public init(issues: [TemplateIssue], isMissingFile: Bool = false) {
        self.issues = issues
        self.isMissingFile = isMissingFile
    }

    /// As for templates: a header, then one `FILE:LINE:COLUMN: path: message` line per issue.
    public var description: String { "\(TemplateValidationError(issues: issues))" }
}

/// One read of one file, collecting issues instead of stopping at the first.
private struct Reader {
    let file: String
    var issues: [TemplateIssue] = []

    init(file: String) { self.file = file }

    mutating func report(_ node: Node?, _ path: String, _ message: String) {
        issues.append(TemplateIssue(file: file, line: node?.mark?.line ?? 0, column: node?.mark?.column ?? 0, path: path, message: message))
    }

    mutating func readFile(_ text: String) -> [ScheduleDefinition] {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            issues.append(YAMLNodes.syntaxIssue(error, file: file, source: text))
            return []
        }
        guard let root, !YAMLNodes.isNull(root) else {
            report(nil, "", "the file is empty; a schedule needs at least name, template and cron")
            return []
        }
        guard let mapping = root.mapping else {
            report(root, "", "a schedule file must be a mapping (one schedule, or `schedules:` with a list of them), got \(YAMLNodes.describe(root))")
            return []
        }
        guard let list = mapping["schedules"] else { return readSchedule(root, path: "").map { [$0] } ?? [] }
        for (key, _) in mapping where key.scalar?.string != "schedules" {
            let name = key.scalar?.string ?? "?"
            report(key, name, "unknown key '\(name)' next to 'schedules'; a file holds either one schedule or `schedules:` with a list")
        }
        guard let sequence = list.sequence else {
            report(list, "schedules", "schedules must be a list of schedules (lines starting with '- '), got \(YAMLNodes.describe(list))")
            return []
        }
        var result: [ScheduleDefinition] = []
        var firstByName: [String: (index: Int, line: Int)] = [:]
        for (index, node) in sequence.enumerated() {
            let path = "schedules[\(index)]"
            let schedule = readSchedule(node, path: path)
            // Names are compared even when a schedule has other problems, so one run shows all.
            if let nameNode = node.mapping?["name"], let name = nameNode.scalar?.string, !YAMLNodes.isNull(nameNode) {
                if let first = firstByName[name] {
                    report(nameNode, "\(path).name", "schedule name '\(name)' is already used by schedules[\(first.index)] (line \(first.line)); names must be unique")
                    continue
                }
                firstByName[name] = (index, nameNode.mark?.line ?? 0)
            }
            if let schedule { result.append(schedule) }
        }
        if sequence.isEmpty { report(list, "schedules", "schedules is an empty list; add at least one schedule or remove the file") }
        return result
    }

    mutating func readSchedule(_ node: Node, path: String) -> ScheduleDefinition? {
        guard let mapping = node.mapping else {
            report(node, path, "a schedule must be a mapping of keys (name, template, cron, …), got \(YAMLNodes.describe(node))")
            return nil
        }
        let before = issues.count
        var entries: [String: Node] = [:]
        for (key, value) in mapping {
            guard let name = key.scalar?.string else {
                report(key, path, "a schedule has a key that is \(YAMLNodes.describe(key)); keys must be plain names")
                continue
            }
            guard ScheduleFileReader.keys.contains(name) else {
                let hint = Suggestions.closest(to: name, among: ScheduleFileReader.keys, limit: 1).first
                    .map { "did you mean '\($0)'?" } ?? "allowed keys are: \(ScheduleFileReader.keys.joined(separator: ", "))."
                report(key, YAMLNodes.path(path, name), "unknown key '\(name)' in a schedule; \(hint)")
                continue
            }
            entries[name] = value
        }
        for key in ["name", "template", "cron"] where entries[key] == nil {
            let hint = ["name": "a name like nightly-report", "template": "a template reference like reports/nightly@1.2.0",
                        "cron": "a cron expression like \"30 2 * * *\""][key]!
            report(node, path, "a schedule is missing the required key '\(key)'; add \(hint)")
        }

        var name = ""
        if let value = entries["name"], let text = text(value, YAMLNodes.path(path, "name"), "name") {
            if let problem = ScheduleDefinition.problem(withName: text) { report(value, YAMLNodes.path(path, "name"), problem) } else { name = text }
        }
        var template = ""
        if let value = entries["template"], let text = text(value, YAMLNodes.path(path, "template"), "template") {
            if let problem = ScheduleDefinition.problem(withTemplate: text) { report(value, YAMLNodes.path(path, "template"), problem) } else { template = text }
        }
        var cron: CronExpression?
        if let value = entries["cron"], let text = text(value, YAMLNodes.path(path, "cron"), "cron") {
            do {
                let parsed = try CronExpression(parsing: text)
                if let problem = ScheduleDefinition.problem(withCron: parsed) { report(value, YAMLNodes.path(path, "cron"), problem) } else { cron = parsed }
            } catch {
                report(value, YAMLNodes.path(path, "cron"), error.message)
            }
        }
        var timeZone = ScheduleDefinition.utc
        var zoneKnown = true
        if let value = entries["timezone"], let text = text(value, YAMLNodes.path(path, "timezone"), "timezone") {
            do { timeZone = try ScheduleTimeZone.named(text) } catch {
                report(value, YAMLNodes.path(path, "timezone"), error.description)
                zoneKnown = false
            }
        }
        let startAt = entries["start"].flatMap { time($0, YAMLNodes.path(path, "start"), "start", in: timeZone, zoneKnown: zoneKnown) }
        let endAt = entries["end"].flatMap { time($0, YAMLNodes.path(path, "end"), "end", in: timeZone, zoneKnown: zoneKnown) }
        if let problem = ScheduleDefinition.problem(withStart: startAt, end: endAt) { report(entries["end"], YAMLNodes.path(path, "end"), problem) }
        var context = JSONValue.object([:])
        if let value = entries["context"] {
            if value.mapping == nil {
                report(value, YAMLNodes.path(path, "context"), "context must be a mapping (key: value lines), got \(YAMLNodes.describe(value)); write it like {region: eu}")
            } else if let json = jsonValue(value, YAMLNodes.path(path, "context")) {
                context = json
            }
        }
        let catchUp = entries["catch_up"].flatMap { choice($0, YAMLNodes.path(path, "catch_up"), "catch_up", CatchUpPolicy.self) } ?? .latest
        let overlap = entries["overlap"].flatMap { choice($0, YAMLNodes.path(path, "overlap"), "overlap", OverlapPolicy.self) } ?? .allow
        var priority = 0
        if let value = entries["priority"] {
            if value.scalar != nil, value.tag.rawValue == Tag.Name.int.rawValue, let number = value.int {
                if let problem = ScheduleDefinition.problem(withPriority: number) { report(value, YAMLNodes.path(path, "priority"), problem) } else { priority = number }
            } else {
                report(value, YAMLNodes.path(path, "priority"), "priority must be a whole number, got \(YAMLNodes.describe(value))")
            }
        }
        var paused = false
        if let value = entries["paused"] {
            if value.scalar != nil, value.tag.rawValue == Tag.Name.bool.rawValue, let flag = value.bool {
                paused = flag
            } else {
                report(value, YAMLNodes.path(path, "paused"), "paused must be true or false, got \(YAMLNodes.describe(value))")
            }
        }
        guard issues.count == before, let cron else { return nil }
        return try? ScheduleDefinition(name: name, template: template, cron: cron, timeZone: timeZone, startAt: startAt, endAt: endAt,
                                       context: context, catchUp: catchUp, overlap: overlap, priority: priority, paused: paused)
    }

    /// A non-null scalar as written (an unquoted `2027-01-01` is a YAML timestamp to Yams; its
    /// text is what counts).
    mutating func text(_ node: Node, _ path: String, _ label: String) -> String? {
        if YAMLNodes.isNull(node) {
            report(node, path, "\(label) is empty; give it a value or remove the key")
            return nil
        }
        guard let scalar = node.scalar else {
            report(node, path, "\(label) must be text, got \(YAMLNodes.describe(node))")
            return nil
        }
        return scalar.string
    }

    mutating func time(_ node: Node, _ path: String, _ label: String, in zone: TimeZone, zoneKnown: Bool) -> Date? {
        guard let text = text(node, path, label) else { return nil }
        if let date = Timestamp.parse(text, timeZone: zone) { return date }
        if Timestamp.parse(text, timeZone: ScheduleDefinition.utc) != nil {
            // Valid in UTC but not in the zone: a local time the clocks skip, or an unknown zone.
            if zoneKnown {
                report(node, path, "\(label) '\(text)' does not exist in \(zone.identifier) (the clocks skip it for daylight saving); give a time outside the gap or with an offset")
            }
            return nil
        }
        report(node, path, "\(label) '\(text)' is not a time; write it like 2027-01-01T09:00:00Z, 2027-01-01T09:00:00+01:00, or 2027-01-01T09:00 (in the schedule's timezone)")
        return nil
    }

    mutating func choice<Choice: RawRepresentable & CaseIterable>(_ node: Node, _ path: String, _ label: String, _ type: Choice.Type) -> Choice? where Choice.RawValue == String {
        guard let text = text(node, path, label) else { return nil }
        if let value = Choice(rawValue: text) { return value }
        let names = Choice.allCases.map(\.rawValue)
        let hint = Suggestions.closest(to: text, among: names, limit: 1).first.map { "did you mean '\($0)'? " } ?? ""
        report(node, path, "\(label) '\(text)' is not one of \(names.joined(separator: ", ")); \(hint)see docs/schedules.md")
        return nil
    }

    /// YAML to JSON by the types Yams resolved (`3` a number, `'3'` text).
    mutating func jsonValue(_ node: Node, _ path: String) -> JSONValue? {
        YAMLNodes.json(node, path: path) { node, path, message in report(node, path, message) }
    }
}
