import ArgumentParser
import Foundation
import OrcastraClient
import OrcastraCommandLine
import OrcastraSchedules
import OrcastraTemplates

/// `orcastra schedule apply FILE|DIR`: declarative schedules, kept in version control.
struct ScheduleApplyCommand: AsyncParsableCommand {
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
        let prune = prune, dryRun = dryRun
        let output = try await CLI.withClient(database) { client in
            // Every template and context is checked before anything is written.
            for definition in definitions { try await client.checkSchedule(definition) }
            var output = Output(dryRun: dryRun)
            let namespaces = Set(definitions.map { $0.template.split(separator: "/").first.map(String.init) ?? "" })
            var listed = Set<String>()
            for definition in definitions {
                let namespace = definition.template.split(separator: "/").first.map(String.init) ?? ""
                let qualified = "\(namespace)/\(definition.name)"
                listed.insert(qualified)
                let change = dryRun ? try await client.scheduleChange(definition) : try await client.applySchedule(definition).1
                switch change {
                case .created: output.created.append(qualified)
                case .updated(let keys): output.updated[qualified] = keys
                case .unchanged: output.unchanged.append(qualified)
                }
            }
            if prune {
                for namespace in namespaces.sorted() {
                    for schedule in try await client.schedules(namespace: namespace) where !listed.contains(schedule.qualifiedName) {
                        if !dryRun { try await client.deleteSchedule(ScheduleName(schedule.qualifiedName)) }
                        output.deleted.append(schedule.qualifiedName)
                    }
                }
            }
            return output
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
