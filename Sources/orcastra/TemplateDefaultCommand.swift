import ArgumentParser
import Foundation
import OrcastraCommandLine
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates

extension TemplateCommand {
    /// `orcastra template default NS/NAME [VERSION | --clear]`: which version unpinned references take.
    struct Default: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show, set or clear the version a reference without a version takes.",
            discussion: """
                `orcastra submit NAMESPACE/NAME` (and create_task_by_name without p_version) takes \
                the default version when one is set, else the highest release that is not \
                deprecated. A deprecated version cannot be the default (lift the deprecation \
                first); a prerelease can. Pinned references (NAMESPACE/NAME@VERSION) are not affected.

                Exit codes: 0 done (or shown); 66 the template or version is not registered; 75 the \
                version is deprecated.

                Examples:
                  orcastra template default shop/checkout            # show it
                  orcastra template default shop/checkout 1.2.0      # set it
                  orcastra template default shop/checkout@1.2.0      # the same
                  orcastra template default shop/checkout --clear    # back to the highest release
                """
        )

        @Argument(help: ArgumentHelp("NAMESPACE/NAME, or NAMESPACE/NAME@VERSION to set that version.", valueName: "template"))
        var template: String

        @Argument(help: ArgumentHelp("The version to make the default.", valueName: "version"))
        var version: String?

        @Flag(help: "Remove the default: unpinned references take the highest release that is not deprecated again.")
        var clear = false

        @Flag(help: "Print JSON for scripts: {\"template\", \"default_version\", \"previous_default_version\", \"unpinned_version\"}.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            if template.contains("@") && version != nil {
                throw ValidationError("Give the version once: NAMESPACE/NAME VERSION or NAMESPACE/NAME@VERSION.")
            }
            if clear && (version != nil || template.contains("@")) {
                throw ValidationError("--clear removes the default; give no version with it.")
            }
        }

        func run() async throws {
            var reference = try TemplateReference(parsing: template)
            if let version {
                reference = try TemplateReference(parsing: "\(reference.namespace)/\(reference.name)@\(version)")
            }
            let pool = PostgresPool(conninfo: try await database.conninfo(), maximumConnections: 1)
            let registry = TemplateRegistry(pool: pool)
            let result: DefaultVersion
            do {
                if clear || reference.version != nil {
                    result = try await registry.setDefault(namespace: reference.namespace, name: reference.name, version: reference.version)
                } else {
                    result = try await registry.defaultVersion(namespace: reference.namespace, name: reference.name)
                }
            } catch {
                await pool.shutdown()
                throw error
            }
            await pool.shutdown()
            if json {
                try CLI.printJSON(Output(result))
            } else {
                print(Self.text(result, changing: clear || reference.version != nil))
            }
        }

        static func text(_ result: DefaultVersion, changing: Bool) -> String {
            let unpinned: String
            switch (result.unpinnedVersion, result.defaultVersion) {
            case (let version?, nil): unpinned = "Unpinned references take \(version), the highest release that is not deprecated."
            case (let version?, _?): unpinned = "Unpinned references take \(version)."
            case (nil, _): unpinned = "No version fits an unpinned reference (every release is deprecated, or there are only prereleases): pin one, or set a default."
            }
            let template = result.template
            guard changing else {
                let state = result.defaultVersion.map { "the default version is \($0)" } ?? "no default version is set"
                return "\(template): \(state). \(unpinned)"
            }
            let previous = result.previousDefault.map { "it was \($0)" } ?? "it was not set"
            switch result.defaultVersion {
            case let version? where version == result.previousDefault:
                return "\(template): the default version is \(version) already. \(unpinned)"
            case let version?:
                return "\(template): the default version is now \(version) (\(previous)). \(unpinned)"
            case nil:
                return "\(template): no default version is set now (\(previous)). \(unpinned)"
            }
        }

        /// Every key always there; versions are strings or null.
        struct Output: Encodable {
            var result: DefaultVersion
            init(_ result: DefaultVersion) { self.result = result }

            enum CodingKeys: String, CodingKey {
                case template, defaultVersion = "default_version", previousDefaultVersion = "previous_default_version"
                case unpinnedVersion = "unpinned_version"
            }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(result.template, forKey: .template)
                try container.encode(result.defaultVersion?.description, forKey: .defaultVersion)
                try container.encode(result.previousDefault?.description, forKey: .previousDefaultVersion)
                try container.encode(result.unpinnedVersion?.description, forKey: .unpinnedVersion)
            }
        }
    }
}
