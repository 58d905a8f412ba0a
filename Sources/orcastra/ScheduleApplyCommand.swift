import ArgumentParser
import Foundation
import OrcastraClient
import OrcastraCommandLine
import OrcastraSchedules
import OrcastraTemplates

/// `orcastra schedule apply FILE|DIR`: declarative schedules, kept in version control.
struct ScheduleApplyCommand: AsyncParsableCommand, WorksOverHTTP {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Make the stored schedules match YAML files: create, update and (with --prune) delete.",
        discussion: """
            Reads every FILE, and every .yaml/.yml file directly in each DIR. Nothing is written \
            unless every file is valid, every template is registered and every context matches its \
            template's input schema. A changed cron expression, time zone, start or end moves the \
            next occurrence to the first one after now; other changes keep it. With --prune, \
            schedules of the namespaces the files name that the files no longer list are deleted \
            (other namespaces are left alone). docs/schedules.md shows the file format.

            Examples:
              orcastra schedule apply schedules/
              orcastra schedule apply schedules/billing.yaml --prune --dry-run
            """
    )

    @Argument(help: ArgumentHelp("Schedule files, or folders of them.", valueName: "path"))
    var paths: [String]

    @Flag(help: "Delete schedules of the files' namespaces that the files do not list.")
    var prune = false

    @Flag(help: "Say what would change, change nothing.")
    var dryRun = false

    @Flag(help: "Print JSON: {\"created\": [...], \"updated\": {name: [keys]}, \"unchanged\": [...], \"deleted\": [...]}.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    struct Output: Encodable {
        var created: [String] = []
        var updated: [String: [String]] = [:]
        var unchanged: [String] = []
        var deleted: [String] = []
        var dryRun: Bool
        enum CodingKeys: String, CodingKey { case created, updated, unchanged, deleted, dryRun = "dry_run" }
    }

    func run() async throws {
        let definitions = try Self.read(paths)
        let output: Output
        if let access = APIAccess.current {
            // Over HTTP each schedule is one PUT, checked by the server; a dry run of every one goes
            // first, so nothing is written unless all of them pass.
            let api = try access.connect()
            output = try await apply(definitions, check: { _ = try await api.applySchedule($0, dryRun: true) },
                                     change: { try await api.applySchedule($0, dryRun: $1) },
                                     list: { try await api.schedules(namespace: $0) }, delete: { _ = try await api.deleteSchedule($0) })
        } else {
            output = try await CLI.withClient(database) { client in
                try await apply(definitions, check: { try await client.checkSchedule($0) },
                                change: { $1 ? try await client.scheduleChange($0) : try await client.applySchedule($0).1 },
                                list: { try await client.schedules(namespace: $0) }, delete: { _ = try await client.deleteSchedule($0) })
            }
        }
        if json {
            try CLI.printJSON(output)
            return
        }
        let verb = dryRun ? "would be " : ""
        for name in output.created { print("\(name): \(verb)created") }
        for name in output.updated.keys.sorted() { print("\(name): \(verb)updated (\(output.updated[name]!.joined(separator: ", ")))") }
        for name in output.unchanged { print("\(name): unchanged") }
        for name in output.deleted { print("\(name): \(verb)deleted") }
        print("\(dryRun ? "Dry run: nothing changed. " : "")\(output.created.count) created, \(output.updated.count) updated, \(output.unchanged.count) unchanged, \(output.deleted.count) deleted.")
    }

    /// The schedules made to match `definitions`, through either service: every one checked
    /// before anything is written.
    private func apply(_ definitions: [ScheduleDefinition], check: (ScheduleDefinition) async throws -> Void,
                       change: (ScheduleDefinition, _ dryRun: Bool) async throws -> ScheduleChange,
                       list: (String) async throws -> [ScheduleInfo], delete: (ScheduleName) async throws -> Void) async throws -> Output {
        for definition in definitions { try await check(definition) }
        var output = Output(dryRun: dryRun)
        let namespaces = Set(definitions.map { $0.template.split(separator: "/").first.map(String.init) ?? "" })
        var listed = Set<String>()
        for definition in definitions {
            let namespace = definition.template.split(separator: "/").first.map(String.init) ?? ""
            let qualified = "\(namespace)/\(definition.name)"
            listed.insert(qualified)
            switch try await change(definition, dryRun) {
            case .created: output.created.append(qualified)
            case .updated(let keys): output.updated[qualified] = keys
            case .unchanged: output.unchanged.append(qualified)
            }
        }
        if prune {
            for namespace in namespaces.sorted() {
                for schedule in try await list(namespace) where !listed.contains(schedule.qualifiedName) {
                    if !dryRun { try await delete(ScheduleName(schedule.qualifiedName)) }
                    output.deleted.append(schedule.qualifiedName)
                }
            }
        }
        return output
    }

    /// Every schedule in `paths`; every problem of every file at once, or nothing.
    static func read(_ paths: [String]) throws -> [ScheduleDefinition] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw CLIFailure(message: "\(path): no such file or folder.", exitCode: .notFound)
            }
            if isDirectory.boolValue {
                let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                let yaml = entries.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
                if yaml.isEmpty { throw CLIFailure(message: "\(path): the folder has no .yaml or .yml files.", exitCode: .notFound) }
                files += yaml.map { (path as NSString).appendingPathComponent($0) }
            } else {
                files.append(path)
            }
        }
        var definitions: [ScheduleDefinition] = [], issues: [TemplateIssue] = []
        var seen: [String: String] = [:]
        for file in files {
            do {
                for definition in try ScheduleFileReader.read(path: file) {
                    let qualified = "\(definition.template.split(separator: "/").first ?? "")/\(definition.name)"
                    if let other = seen[qualified] {
                        issues.append(TemplateIssue(file: file, line: 0, column: 0, path: "",
                                                    message: "schedule \(qualified) is also defined in \(other); each schedule once"))
                    }
                    seen[qualified] = file
                    definitions.append(definition)
                }
            } catch {
                issues += error.issues
            }
        }
        if !issues.isEmpty {
            throw CLIFailure(message: issues.map(\.description).joined(separator: "\n") + "\nNothing was applied.", exitCode: .invalidInput)
        }
        return definitions
    }
}
