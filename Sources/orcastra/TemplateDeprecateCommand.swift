import ArgumentParser
import Foundation
import OrcastraCommandLine
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates

extension TemplateCommand {
    /// `orcastra template deprecate NS/NAME@VERSION [--reason TEXT | --undo]`.
    struct Deprecate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Retire a template version: it still runs, but new tasks must pin it and allow it.",
            discussion: """
                Tasks already made from a deprecated version go on. New tasks are refused (exit 75) \
                unless they pin it and pass --allow-deprecated (`orcastra submit NS/NAME@VERSION \
                --allow-deprecated`); a reference without a version never takes it. Deprecating \
                again keeps the first time and takes a new --reason. The default version cannot be \
                deprecated: set another default or clear it first. --undo lifts the deprecation.

                Exit codes: 0 done (also when nothing changed); 65 the reference has no version; \
                66 the version is not registered; 75 it is the default version.

                Examples:
                  orcastra template deprecate shop/checkout@1.0.0 --reason "charges twice on retry"
                  orcastra template deprecate shop/checkout@1.0.0 --undo
                """
        )

        @Argument(help: ArgumentHelp("The version: NAMESPACE/NAME@VERSION.", valueName: "template"))
        var template: String

        @Option(help: ArgumentHelp("Why, for people: shown by template list/show and in the refusal of a new task.", valueName: "text"))
        var reason: String?

        @Flag(help: "Lift the deprecation: new tasks may use the version again.")
        var undo = false

        @Flag(help: "Print JSON for scripts (see docs/cli.md).")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            if undo && reason != nil { throw ValidationError("--reason goes with a deprecation, not with --undo.") }
        }

        func run() async throws {
            let reference = try TemplateReference(parsing: template)
            guard reference.version != nil else {
                throw CLIFailure(message: "Name the version to \(undo ? "lift the deprecation of" : "deprecate"): \(reference)@VERSION. `orcastra template list` shows the registered versions.",
                                 exitCode: .invalidInput)
            }
            let pool = PostgresPool(conninfo: try await database.conninfo(), maximumConnections: 1)
            let registry = TemplateRegistry(pool: pool)
            let result: Deprecation
            do {
                result = undo ? try await registry.undeprecate(reference) : try await registry.deprecate(reference, reason: reason)
            } catch {
                await pool.shutdown()
                throw error
            }
            await pool.shutdown()
            if json {
                try CLI.printJSON(Output(result))
            } else {
                print(Self.text(result))
            }
        }

        static func text(_ result: Deprecation) -> String {
            let reference = result.reference.description
            let unpinned = result.unpinnedVersion.map { "Unpinned references take \($0)." }
                ?? "No version fits an unpinned reference now: pin one, or set a default."
            guard let since = result.deprecatedAt else {
                return result.changed
                    ? "\(reference) is no longer deprecated: new tasks may use it again. \(unpinned)"
                    : "\(reference) was not deprecated; nothing changed. \(unpinned)"
            }
            let why = result.reason.map { " (\($0))" } ?? ""
            return result.changed
                ? "Deprecated \(reference)\(why): tasks made from it go on; new tasks are refused unless they pin it with --allow-deprecated. \(unpinned)"
                : "\(reference) was already deprecated (since \(since.formatted(.iso8601)))\(why). \(unpinned)"
        }

        /// Every key always there.
        struct Output: Encodable {
            var result: Deprecation
            init(_ result: Deprecation) { self.result = result }

            enum CodingKeys: String, CodingKey {
                case template, deprecated, deprecatedAt = "deprecated_at", deprecationReason = "deprecation_reason"
                case changed, unpinnedVersion = "unpinned_version"
            }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(result.reference.description, forKey: .template)
                try container.encode(result.deprecatedAt != nil, forKey: .deprecated)
                try container.encode(result.deprecatedAt, forKey: .deprecatedAt)
                try container.encode(result.reason, forKey: .deprecationReason)
                try container.encode(result.changed, forKey: .changed)
                try container.encode(result.unpinnedVersion?.description, forKey: .unpinnedVersion)
            }
        }
    }
}
