import ArgumentParser
import Foundation
import OrcastraAPIClient
import OrcastraCommandLine
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates

extension TemplateCommand {
    /// `orcastra template register PATH...`: all files are checked first; any issue registers nothing.
    struct Register: AsyncParsableCommand, WorksOverHTTP {
        static let configuration = CommandConfiguration(
            abstract: "Register template versions in the database.",
            discussion: """
                Every file is checked first, as `template validate` does; if any is invalid, nothing \
                is registered. Registering identical content again changes nothing. A version is \
                immutable: registering the same version with different content is refused.

                Exit codes: 0 every template registered or unchanged; 65 a file is invalid; 66 a path \
                does not exist; 69 the database cannot be reached; 75 a version is registered with \
                other content (the other files are still registered).

                Examples:
                  orcastra template register Templates/
                  orcastra template register billing/invoice.yaml billing/refund.yaml --json
                """
        )

        @Argument(help: ArgumentHelp("Template files, or folders of *.yaml files.", valueName: "path"))
        var paths: [String]

        @OptionGroup var database: DatabaseOptions

        @Flag(help: "Print a JSON array with one object per file and what became of it (see docs/cli.md).")
        var json = false

        func run() async throws {
            let check = TemplateLoader.check(paths: paths)
            if let failure = check.failure {
                if json {
                    try CLI.printJSON(check.files.map { file in
                        TemplateFileJSON(check: file, registration: .init(outcome: file.isValid ? .skipped : .invalid))
                    })
                }
                throw failure
            }
            let results: [TemplateFileJSON]
            if let access = APIAccess.current {
                let api = try access.connect()
                results = try await register(check.files) { try await api.register(yaml: $0.source) }
            } else {
                let pool = PostgresPool(conninfo: try await database.conninfo(), maximumConnections: 1)
                do {
                    let registry = TemplateRegistry(pool: pool)
                    results = try await register(check.files) { try await registry.register($0) }
                } catch {
                    await pool.shutdown()
                    throw error
                }
                await pool.shutdown()
            }
            if json { try CLI.printJSON(results) }
            let refused = results.filter { $0.registration?.outcome == .refused }.count
            if refused > 0 {
                throw CLIFailure(message: "\(refused) template(s) not registered because of version conflicts.", exitCode: .conflict)
            }
        }

        /// Registers each file, printing a line for each unless `--json`; a version conflict is
        /// reported on standard error and the rest go on.
        /// Registers each valid file through `registry` (the database, or the HTTP API).
        private func register(_ files: [TemplateFileCheck],
                              with registry: (LoadedTemplate) async throws -> TemplateRegistry.Registration) async throws -> [TemplateFileJSON] {
            var results: [TemplateFileJSON] = []
            for file in files {
                guard let template = file.template, let source = file.source else { continue }
                let registration: TemplateFileJSON.Registration
                do {
                    switch try await registry(LoadedTemplate(file: file.file, source: source, template: template)) {
                    case .registered(let id): registration = .init(outcome: .registered, id: id)
                    case .unchanged(let id): registration = .init(outcome: .unchanged, id: id)
                    }
                } catch let error as StoreError {
                    guard case .versionConflict = error else { throw error }
                    CLI.writeError("error: \(file.file): \(error)\n")
                    registration = .init(outcome: .refused, error: "\(error)")
                } catch let problem as APIProblem where problem.status == 409 {
                    // The same refusal over HTTP: the detail is the store's own sentence.
                    CLI.writeError("error: \(file.file): \(problem)\n")
                    registration = .init(outcome: .refused, error: "\(problem)")
                }
                if !json && registration.outcome != .refused {
                    print("\(registration.outcome.rawValue.padded(to: 10))  \(template.reference)  (\(file.file))")
                }
                results.append(TemplateFileJSON(check: file, registration: registration))
            }
            return results
        }
    }
}
