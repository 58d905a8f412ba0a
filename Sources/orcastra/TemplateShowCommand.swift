import ArgumentParser
import Foundation
import OrcastraCommandLine
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates

extension TemplateCommand {
    /// `orcastra template show`: one version, its lifecycle and its DAG.
    struct Show: AsyncParsableCommand, WorksOverHTTP {
        static let configuration = CommandConfiguration(
            abstract: "Show a registered template and its DAG.",
            discussion: """
                Without a version, shows the one `orcastra submit NAMESPACE/NAME` takes: the \
                default version, else the highest release that is not deprecated.

                Examples:
                  orcastra template show examples/diamond
                  orcastra template show examples/etl@1.0.0 --source
                """
        )

        @Argument(help: "NAMESPACE/NAME, or NAMESPACE/NAME@VERSION.")
        var reference: String

        @Flag(help: "Print the YAML source as it was registered.")
        var source = false

        @Flag(help: "Print the normalized definition as JSON (as stored), with the registry's facts under \"registry\".")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            if source && json { throw ValidationError("Give --source (the YAML as registered) or --json (the stored definition), not both.") }
        }

        func run() async throws {
            let reference = try TemplateReference(parsing: reference)
            let stored = try await find(reference)
            if json {
                // Pretty-printed like every other command's JSON.
                try CLI.printJSON(try JSONValue(parsing: try ShownTemplate.text(stored)))
            } else if source {
                print(stored.source, terminator: stored.source.hasSuffix("\n") ? "" : "\n")
            } else {
                let template = stored.template
                print("\(template.reference)  (\(CLI.count(template.steps.count, "step", "steps")), registered \(stored.registeredAt.formatted(.iso8601)))")
                if let description = template.description { print(description) }
                for line in Self.lifecycle(of: stored) { print(line) }
                if let retention = template.retention, !retention.isEmpty {
                    let given = RetentionPolicy.states.compactMap { state in retention[state].map { "\(state) \($0)" } }
                    let others = given.count < RetentionPolicy.states.count ? "; other states: the orchestrators' defaults" : ""
                    print("Retention: \(given.joined(separator: ", "))\(others).")
                }
                print("")
                print(template.renderDAG())
            }
        }

        /// Whether unpinned references take it, and its deprecation.
        private func find(_ reference: TemplateReference) async throws -> StoredTemplate {
            if let access = APIAccess.current { return try await access.connect().template(reference) }
            let pool = PostgresPool(conninfo: try await database.conninfo(), maximumConnections: 1)
            do {
                let stored = try await TemplateRegistry(pool: pool).find(reference)
                await pool.shutdown()
                return stored
            } catch {
                await pool.shutdown()
                throw error
            }
        }

        static func lifecycle(of stored: StoredTemplate) -> [String] {
            let family = "\(stored.template.namespace)/\(stored.template.name)"
            var lines: [String] = []
            if stored.isDefault {
                lines.append("Default: yes, set with `orcastra template default`; `\(family)` takes this version.")
            } else if stored.isUnpinnedChoice {
                lines.append("Default: none set; `\(family)` takes this version, the highest release that is not deprecated.")
            } else if let unpinned = stored.unpinnedVersion {
                lines.append("Default: no; `\(family)` takes \(unpinned).")
            }
            if let since = stored.deprecatedAt {
                lines.append("Deprecated since \(since.formatted(.iso8601))" + (stored.deprecationReason.map { ": \($0)" } ?? "")
                             + ". New tasks are refused unless pinned with --allow-deprecated.")
            }
            return lines
        }
    }

    /// `template show --json`: the normalized definition exactly as stored (one line, numbers as
    /// written), with the registry's facts added under `registry`.
    struct ShownTemplate: Encodable {
        var id: Int64
        var contentHash: String
        var registeredAt: Date
        var stepCount: Int
        var isDefault: Bool
        var isUnpinnedChoice: Bool
        var deprecatedAt: Date?
        var deprecationReason: String?

        enum CodingKeys: String, CodingKey {
            case id, contentHash = "content_hash", registeredAt = "registered_at", stepCount = "step_count"
            case isDefault = "default", isUnpinnedChoice = "unpinned", deprecated
            case deprecatedAt = "deprecated_at", deprecationReason = "deprecation_reason"
        }

        init(_ stored: StoredTemplate) {
            id = stored.id
            contentHash = stored.contentHash
            registeredAt = stored.registeredAt
            stepCount = stored.template.steps.count
            isDefault = stored.isDefault
            isUnpinnedChoice = stored.isUnpinnedChoice
            deprecatedAt = stored.deprecatedAt
            deprecationReason = stored.deprecationReason
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(contentHash, forKey: .contentHash)
            try container.encode(registeredAt, forKey: .registeredAt)
            try container.encode(stepCount, forKey: .stepCount)
            try container.encode(isDefault, forKey: .isDefault)
            try container.encode(isUnpinnedChoice, forKey: .isUnpinnedChoice)
            try container.encode(deprecatedAt != nil, forKey: .deprecated)
            try container.encode(deprecatedAt, forKey: .deprecatedAt)
            try container.encode(deprecationReason, forKey: .deprecationReason)
        }

        /// The definition's object with `"registry": {…}` added before its closing brace.
        static func text(_ stored: StoredTemplate) throws -> String {
            let definition = try stored.template.normalizedJSON()
            return definition.dropLast() + ",\"registry\":" + (try CLI.jsonText(ShownTemplate(stored), pretty: false)) + "}"
        }
    }
}
