import ArgumentParser
import Foundation
import OrcastraPostgres
import OrcastraCommandLine
import OrcastraStore
import OrcastraTemplates

struct TemplateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "template",
        abstract: "Validate, register and inspect workflow templates.",
        discussion: "The YAML format is described in docs/templates.md.",
        subcommands: [Validate.self, Register.self, List.self, Show.self]
    )

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check template files without a database.",
            discussion: """
                Reports every error of every file at once, each with file:line:column and the path \
                of the key (e.g. steps[3].depends_on[1]).

                Examples:
                  orcastra template validate Templates/
                  orcastra template validate Templates/etl.yaml
                """
        )

        @Argument(help: "A template file, or a folder of *.yaml files.")
        var path: String

        @Flag(help: "Print JSON for scripts.")
        var json = false

        func run() async throws {
            let loaded = try TemplateLoader.load(path: path)
            if json {
                try CLI.printJSON(loaded.map { ["file": $0.file, "template": $0.template.reference, "steps": String($0.template.steps.count)] })
                return
            }
            for template in loaded {
                print("ok  \(template.file): \(template.template.reference) (\(template.template.steps.count) steps)")
            }
        }
    }

    struct Register: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register template versions in the database.",
            discussion: """
                Registering identical content again changes nothing. A version is immutable: \
                registering the same version with different content is refused.

                Examples:
                  orcastra template register Templates/
                """
        )

        @Argument(help: "A template file, or a folder of *.yaml files.")
        var path: String

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let loaded = try TemplateLoader.load(path: path)
            let pool = PostgresPool(conninfo: try await database.conninfo(), maximumConnections: 1)
            let registry = TemplateRegistry(pool: pool)
            var conflicts: [String] = []
            for template in loaded {
                do {
                    switch try await registry.register(template) {
                    case .registered: print("registered  \(template.template.reference)  (\(template.file))")
                    case .unchanged: print("unchanged   \(template.template.reference)  (\(template.file))")
                    }
                } catch let error as StoreError {
                    guard case .versionConflict = error else { throw error }
                    FileHandle.standardError.write(Data("error: \(template.file): \(error)\n".utf8))
                    conflicts.append(template.file)
                }
            }
            await pool.shutdown()
            if !conflicts.isEmpty {
                throw CLIFailure(message: "\(conflicts.count) template(s) not registered because of version conflicts.", exitCode: .conflict)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List registered templates and their versions.")

        @OptionGroup var database: DatabaseOptions

        @Flag(help: "Print JSON for scripts.")
        var json = false

        func run() async throws {
            let pool = PostgresPool(conninfo: try await database.conninfo(), maximumConnections: 1)
            let templates = try await TemplateRegistry(pool: pool).list()
            await pool.shutdown()
            if json {
                try CLI.printJSON(templates)
                return
            }
            if templates.isEmpty {
                print("No templates registered. Register some with `orcastra template register Templates/`.")
                return
            }
            let width = max(20, templates.map(\.reference.count).max() ?? 0)
            print("TEMPLATE".padding(toLength: width + 2, withPad: " ", startingAt: 0) + "STEPS  REGISTERED            DESCRIPTION")
            for template in templates {
                print(template.reference.padding(toLength: width + 2, withPad: " ", startingAt: 0)
                      + String(template.stepCount).padding(toLength: 7, withPad: " ", startingAt: 0)
                      + template.registeredAt.formatted(.iso8601).padding(toLength: 22, withPad: " ", startingAt: 0)
                      + (template.description ?? ""))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a registered template and its DAG.",
            discussion: """
                Examples:
                  orcastra template show examples/diamond
                  orcastra template show examples/etl@1.0.0 --source
                """
        )

        @Argument(help: "NAMESPACE/NAME, or NAMESPACE/NAME@VERSION (default: the highest version).")
        var reference: String

        @Flag(help: "Print the YAML source as it was registered.")
        var source = false

        @Flag(help: "Print the normalized definition as JSON.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let reference = try TemplateReference(parsing: reference)
            let pool = PostgresPool(conninfo: try await database.conninfo(), maximumConnections: 1)
            let stored = try await TemplateRegistry(pool: pool).find(reference)
            await pool.shutdown()
            if json {
                print(try stored.template.normalizedJSON())
            } else if source {
                print(stored.source, terminator: stored.source.hasSuffix("\n") ? "" : "\n")
            } else {
                let template = stored.template
                print("\(template.reference)  (\(template.steps.count) steps, registered \(stored.registeredAt.formatted(.iso8601)))")
                if let description = template.description { print(description) }
                print("")
                print(template.renderDAG())
            }
        }
    }
}
