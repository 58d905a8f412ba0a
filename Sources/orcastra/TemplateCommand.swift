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
