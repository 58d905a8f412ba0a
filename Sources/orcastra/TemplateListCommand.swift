import ArgumentParser
import Foundation
import OrcastraCommandLine
import OrcastraPostgres
import OrcastraStore

extension TemplateCommand {
    /// `orcastra template list`: every registered version, with which one is the default and which are deprecated.
    struct List: AsyncParsableCommand, WorksOverHTTP {
        static let configuration = CommandConfiguration(
            abstract: "List registered templates and their versions.",
            discussion: """
                STATUS says which version a reference without one (NAMESPACE/NAME) takes — \
                `default` when it was set with `orcastra template default`, else `latest`, the \
                highest release that is not deprecated — and which versions are `deprecated`.
                """
        )

        @OptionGroup var database: DatabaseOptions

        @Flag(help: "Print JSON for scripts (see docs/cli.md).")
        var json = false

        func run() async throws {
            let templates = try await read()
            if json {
                try CLI.printJSON(templates)
                return
            }
            if templates.isEmpty {
                print("No templates registered. Register some with `orcastra template register Templates/`.")
                return
            }
            print(CLI.table(["TEMPLATE", "STEPS", "REGISTERED", "STATUS", "DESCRIPTION"], templates.map { template in
                [template.reference, String(template.stepCount), template.registeredAt.formatted(.iso8601),
                 Self.status(of: template), template.description ?? ""]
            }))
        }

        private func read() async throws -> [TemplateSummary] {
            if let access = APIAccess.current { return try await access.connect().templates() }
            let pool = PostgresPool(conninfo: try await database.conninfo(), maximumConnections: 1)
            do {
                let templates = try await TemplateRegistry(pool: pool).list()
                await pool.shutdown()
                return templates
            } catch {
                await pool.shutdown()
                throw error
            }
        }

        static func status(of template: TemplateSummary) -> String {
            if template.isDefault { return "default" }
            if template.isUnpinnedChoice { return "latest" }
            return template.isDeprecated ? "deprecated" : ""
        }
    }
}
