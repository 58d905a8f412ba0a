import ArgumentParser
import Foundation
import OrcastraCommandLine
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates

extension TemplateCommand {
    /// `orcastra template diff A B`: what differs between two stored definitions, step by step.
    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what differs between two registered template versions, step by step.",
            discussion: """
                Compares the stored, normalized definitions (every default resolved), not the YAML: \
                steps added and removed, and for each step both have, every field that changed \
                (handler or command, depends_on, retry, timeout, namespace, env, …); outside the \
                steps, description, input_schema and the order of the steps. A reference without a \
                version means the one `orcastra submit` takes.

                Exit codes, as diff(1): 0 the definitions are the same; 1 they differ; 65 a \
                malformed reference; 66 a template or version that is not registered; 69 no database.

                Examples:
                  orcastra template diff shop/checkout@1.0.0 shop/checkout@1.1.0
                  orcastra template diff shop/checkout@1.0.0 shop/checkout --json
                """
        )

        @Argument(help: ArgumentHelp("The old version: NAMESPACE/NAME@VERSION.", valueName: "from"))
        var from: String

        @Argument(help: ArgumentHelp("The new version: NAMESPACE/NAME@VERSION.", valueName: "to"))
        var to: String

        @Flag(help: "Print JSON for scripts (see docs/cli.md).")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let old = try TemplateReference(parsing: from)
            let new = try TemplateReference(parsing: to)
            let pool = PostgresPool(conninfo: try await database.conninfo(), maximumConnections: 1)
            let registry = TemplateRegistry(pool: pool)
            let before: StoredTemplate, after: StoredTemplate
            do {
                before = try await registry.find(old)
                after = try await registry.find(new)
            } catch {
                await pool.shutdown()
                throw error
            }
            await pool.shutdown()
            let diff = try TemplateDiff(from: before.template, to: after.template)
            if json {
                try CLI.printJSON(diff)
            } else {
                print(diff.rendered { after.template.summary(ofStep: $0) })
            }
            // diff(1)'s convention, without a message: the output above is complete either way.
            if !diff.isIdentical { throw ArgumentParser.ExitCode(1) }
        }
    }
}
