import Foundation
import OrcastraPostgres
import OrcastraTemplates

/// A template as it is stored: immutable once registered; only its lifecycle (default,
/// deprecation) changes beside it.
public struct StoredTemplate: Sendable {
    /// For values read elsewhere (the HTTP API's client, OrcastraAPIClient).
    public init(id: Int64, template: WorkflowTemplate, source: String, contentHash: String, registeredAt: Date,
                deprecatedAt: Date?, deprecationReason: String?, isDefault: Bool, unpinnedVersion: SemanticVersion?) {
        self.id = id
        self.template = template
        self.source = source
        self.contentHash = contentHash
        self.registeredAt = registeredAt
        self.deprecatedAt = deprecatedAt
        self.deprecationReason = deprecationReason
        self.isDefault = isDefault
        self.unpinnedVersion = unpinnedVersion
    }

    public var id: Int64
    public var template: WorkflowTemplate
    public var source: String
    public var contentHash: String
    public var registeredAt: Date
    /// When it was deprecated (`orcastra template deprecate`): new tasks are refused unless pinned
    /// and allowed. Nil while it is not.
    public var deprecatedAt: Date?
    public var deprecationReason: String?
    /// It is the version set as its template's default.
    public var isDefault: Bool
    /// The version a reference without one takes now (``TemplateVersionRule``), nil when none fits.
    public var unpinnedVersion: SemanticVersion?

    /// A reference without a version takes this one.
    public var isUnpinnedChoice: Bool { unpinnedVersion == template.version }
}


public struct TemplateSummary: Sendable, Codable {
    /// For values read elsewhere (the HTTP API's client, OrcastraAPIClient).
    public init(namespace: String, name: String, version: String, description: String?, stepCount: Int, registeredAt: Date,
                isDefault: Bool, isUnpinnedChoice: Bool, isDeprecated: Bool, deprecatedAt: Date?, deprecationReason: String?) {
        self.namespace = namespace
        self.name = name
        self.version = version
        self.description = description
        self.stepCount = stepCount
        self.registeredAt = registeredAt
        self.isDefault = isDefault
        self.isUnpinnedChoice = isUnpinnedChoice
        self.isDeprecated = isDeprecated
        self.deprecatedAt = deprecatedAt
        self.deprecationReason = deprecationReason
    }

    public var namespace: String
    public var name: String
    public var version: String
    public var description: String?
    public var stepCount: Int
    public var registeredAt: Date
    /// It is the version set as its template's default (`orcastra template default`).
    public var isDefault: Bool
    /// A reference without a version takes it: the default, else the highest release that is not deprecated.
    public var isUnpinnedChoice: Bool
    public var isDeprecated: Bool
    public var deprecatedAt: Date?
    public var deprecationReason: String?

    public var reference: String { "\(namespace)/\(name)@\(version)" }

    /// The same snake_case keys as every other `--json` output.
    enum CodingKeys: String, CodingKey {
        case namespace, name, version, description
        case stepCount = "step_count"
        case registeredAt = "registered_at"
        case isDefault = "default"
        case isUnpinnedChoice = "unpinned"
        case isDeprecated = "deprecated"
        case deprecatedAt = "deprecated_at"
        case deprecationReason = "deprecation_reason"
    }
}

/// The template registry in PostgreSQL.
public struct TemplateRegistry: Sendable {
    public let pool: PostgresPool

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    public enum Registration: Sendable, Equatable {
        case registered(id: Int64)
        /// The same version with the same content was there already: nothing to do.
        case unchanged(id: Int64)
    }

    /// Registers a template version. Identical content again is a no-op; the same version with
    /// other content is refused (`StoreError.versionConflict`).
    public func register(_ loaded: LoadedTemplate) async throws -> Registration {
        let template = loaded.template
        let definition = try template.normalizedJSON()
        return try await pool.withTransaction { connection in
            let inserted = try await connection.query("""
                INSERT INTO orcastra.templates (namespace, name, version, description, definition, source, content_hash, step_count)
                VALUES (\(template.namespace), \(template.name), \(template.version.description), \(template.description),
                        \(JSONText(definition)), \(loaded.source), encode(sha256(convert_to(\(definition)::text, 'UTF8')), 'hex'),
                        \(template.steps.count))
                ON CONFLICT (namespace, name, version) DO NOTHING
                RETURNING id
                """)
            if let row = inserted.first {
                let id: Int64 = try row.decode("id")
                // Recursion through templates (functions/subworkflows.sql): refused, and rolled back.
                if let cycle = try await connection.query("SELECT step_name, chain FROM orcastra.workflow_cycle(\(id))").first {
                    let step: String = try cycle.decode("step_name")
                    throw StoreError.workflowCycle(file: loaded.file, line: Self.workflowLine(ofStep: step, in: loaded.source),
                                                   step: step, chain: try cycle.decode("chain"))
                }
                return .registered(id: id)
            }
            let existing = try await connection.queryRow("""
                SELECT id, content_hash = encode(sha256(convert_to(\(definition)::text, 'UTF8')), 'hex') AS same
                FROM orcastra.templates
                WHERE namespace = \(template.namespace) AND name = \(template.name) AND version = \(template.version.description)
                """)
            guard try existing.decode("same", as: Bool.self) else {
                throw StoreError.versionConflict(reference: template.reference)
            }
            return .unchanged(id: try existing.decode("id"))
        }
    }

    /// The line (1-based) of step `step`'s `workflow:` key in a template's YAML source, for errors
    /// about what it refers to; nil when it cannot be told (a flow-style step, say).
    static func workflowLine(ofStep step: String, in source: String) -> Int? {
        var inStep = false
        for (index, line) in source.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var text = line.trimmingCharacters(in: .whitespaces)
            if text.hasPrefix("- ") { text = String(text.dropFirst(2)).trimmingCharacters(in: .whitespaces) }
            if text.hasPrefix("name:") {
                let value = text.dropFirst(5).trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
                inStep = value == step
            } else if inStep, text.hasPrefix("workflow:") {
                return index + 1
            }
        }
        return nil
    }

    /// Every registered version, by namespace, name and version, with its lifecycle.
    public func list() async throws -> [TemplateSummary] {
        let rows = try await pool.query("""
            SELECT t.id, t.namespace, t.name, t.version, t.description, t.step_count, t.registered_at,
                   t.deprecated_at, t.deprecation_reason, t.deprecated_at IS NOT NULL AS deprecated, d.version AS default_version
            FROM orcastra.templates t
            LEFT JOIN orcastra.template_defaults d ON d.namespace = t.namespace AND d.name = t.name
            ORDER BY t.namespace, t.name
            """)
        return try Self.summaries(rows.rows)
    }

    /// Groups rows by template to apply ``TemplateVersionRule`` to each, versions in semver order.
    static func summaries(_ rows: [PostgresRow]) throws -> [TemplateSummary] {
        var groups: [[PostgresRow]] = []
        var last: (String, String)?
        for row in rows {
            let key = (try row.decode("namespace", as: String.self), try row.decode("name", as: String.self))
            if let last, last == key { groups[groups.count - 1].append(row) } else { groups.append([row]) }
            last = key
        }
        let templates = try groups.map { try TemplateVersions(namespace: try $0[0].decode("namespace"), name: try $0[0].decode("name"), rows: $0) }
        return try zip(templates, groups).sorted { ($0.0.namespace, $0.0.name) < ($1.0.namespace, $1.0.name) }.flatMap { versions, group in
            let unpinned = versions.unpinned
            return try group.map { row in
                let version = try SemanticVersion(parsing: try row.decode("version", as: String.self))
                return (version, TemplateSummary(
                    namespace: versions.namespace, name: versions.name, version: version.description,
                    description: try row.decode("description"), stepCount: try row.decode("step_count"),
                    registeredAt: try row.decode("registered_at"), isDefault: version == versions.defaultVersion,
                    isUnpinnedChoice: version == unpinned, isDeprecated: try row.decode("deprecated"),
                    deprecatedAt: try row.decode("deprecated_at"), deprecationReason: try row.decode("deprecation_reason")))
            }.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    /// Finds `namespace/name` at `version`, or without a version the one ``TemplateVersionRule``
    /// picks: the default version, else the highest release that is not deprecated. A pinned
    /// deprecated version is found (to show it, or to run it when allowed); `create_task` refuses
    /// it for a new task unless allowed.
    public func find(_ reference: TemplateReference) async throws -> StoredTemplate {
        let rows = try await pool.query(TemplateVersions.query(namespace: reference.namespace, name: reference.name))
        let versions = try TemplateVersions(namespace: reference.namespace, name: reference.name, rows: rows.rows)
        if reference.version == nil, !versions.entries.isEmpty, versions.unpinned == nil {
            throw versions.unpinnedRefusal(reference.description)
        }
        guard let wanted = reference.version ?? versions.unpinned, let id = versions.id(of: wanted) else {
            throw StoreError.templateNotFound(reference: reference.description, suggestions: try await suggestions(for: reference))
        }
        let statement: SQL = """
            SELECT id, definition, source, content_hash, registered_at, deprecated_at, deprecation_reason
            FROM orcastra.templates WHERE id = \(id)
            """
        // Versions are never deleted: the row found above is there.
        guard let row = try await pool.query(statement).first else { throw PostgresError.noRows(statement: statement.text) }
        return try Self.stored(row, versions: versions)
    }

    /// Decodes a stored row. Synchronous on purpose: Swift 6.3's optimizer crashed splitting the
    /// async `find` when this work was inline.
    static func stored(_ row: PostgresRow, versions: TemplateVersions) throws -> StoredTemplate {
        let template = try WorkflowTemplate(normalizedJSON: try row.decode("definition", as: String.self))
        return StoredTemplate(
            id: try row.decode("id"),
            template: template,
            source: try row.decode("source"),
            contentHash: try row.decode("content_hash"),
            registeredAt: try row.decode("registered_at"),
            deprecatedAt: try row.decode("deprecated_at"),
            deprecationReason: try row.decode("deprecation_reason"),
            isDefault: versions.defaultVersion == template.version,
            unpinnedVersion: versions.unpinned
        )
    }

    /// The registered references closest to a mistyped one.
    func suggestions(for reference: TemplateReference) async throws -> [String] {
        let all = try await list()
        let sameName = all.filter { $0.namespace == reference.namespace && $0.name == reference.name }
        if !sameName.isEmpty { return sameName.suffix(3).map(\.reference) }
        let wanted = "\(reference.namespace)/\(reference.name)"
        let scored = Set(all.map { "\($0.namespace)/\($0.name)" })
            .map { ($0, EditDistance.distance($0, wanted)) }
            .filter { $0.1 <= max(2, wanted.count / 5) }
            .sorted { ($0.1, $0.0) < ($1.1, $1.0) }
        return scored.prefix(3).map(\.0)
    }
}

/// `namespace/name` or `namespace/name@version`, as typed on the command line.
public struct TemplateReference: Sendable, Hashable, CustomStringConvertible {
    public var namespace: String
    public var name: String
    public var version: SemanticVersion?

    public init(namespace: String, name: String, version: SemanticVersion? = nil) {
        self.namespace = namespace
        self.name = name
        self.version = version
    }

    /// Reads `namespace/name` or `namespace/name@version` (``TemplateReferenceSyntax``, the reader
    /// `workflow:` steps and schedules share); throws ``TemplateReferenceError``.
    public init(parsing text: String) throws {
        switch Result(catching: { () throws(TemplateReferenceSyntax.Problem) in try TemplateReferenceSyntax.parse(text) }) {
        case .success(let parts):
            self.init(namespace: parts.namespace, name: parts.name, version: parts.version)
        case .failure(.shape):
            throw TemplateReferenceError(text: text, reason: "write it as NAMESPACE/NAME or NAMESPACE/NAME@VERSION, e.g. examples/linear@1.0.0")
        case .failure(.invalidName(_, let part, _)):
            throw TemplateReferenceError(text: text, reason: "'\(part.prefix(40))' is not a valid name (a lowercase letter, then lowercase letters, digits, _ or -; see docs/templates.md)")
        case .failure(.invalidVersion(let version, _)):
            throw TemplateReferenceError(text: text, reason: "\(version) is not a semantic version like 1.2.0")
        }
    }

    public var description: String {
        "\(namespace)/\(name)" + (version.map { "@\($0)" } ?? "")
    }
}

public struct TemplateReferenceError: Error, Sendable, CustomStringConvertible {
    public var text: String
    public var reason: String
    public var description: String { "'\(text)' is not a template reference: \(reason)." }
}
