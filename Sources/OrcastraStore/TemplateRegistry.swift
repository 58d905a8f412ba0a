import Foundation
import OrcastraPostgres
import OrcastraTemplates

/// A template as it is stored: immutable once registered.
public struct StoredTemplate: Sendable {
    public var id: Int64
    public var template: WorkflowTemplate
    public var source: String
    public var contentHash: String
    public var registeredAt: Date
}

public struct TemplateSummary: Sendable, Codable {
    public var namespace: String
    public var name: String
    public var version: String
    public var description: String?
    public var stepCount: Int
    public var registeredAt: Date

    public var reference: String { "\(namespace)/\(name)@\(version)" }

    /// The same snake_case keys as every other `--json` output.
    enum CodingKeys: String, CodingKey {
        case namespace, name, version, description
        case stepCount = "step_count"
        case registeredAt = "registered_at"
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
            if let row = inserted.first { return .registered(id: try row.decode("id")) }
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

    /// Every registered version, by namespace, name and version.
    public func list() async throws -> [TemplateSummary] {
        let rows = try await pool.query("""
            SELECT namespace, name, version, description, step_count, registered_at
            FROM orcastra.templates ORDER BY namespace, name, registered_at
            """)
        return try rows.map { row in
            TemplateSummary(namespace: try row.decode("namespace"), name: try row.decode("name"),
                            version: try row.decode("version"), description: try row.decode("description"),
                            stepCount: try row.decode("step_count"), registeredAt: try row.decode("registered_at"))
        }.sorted { lhs, rhs in
            if lhs.namespace != rhs.namespace { return lhs.namespace < rhs.namespace }
            if lhs.name != rhs.name { return lhs.name < rhs.name }
            let left = try? SemanticVersion(parsing: lhs.version)
            let right = try? SemanticVersion(parsing: rhs.version)
            if let left, let right { return left < right }
            return lhs.version < rhs.version
        }
    }

    /// Finds `namespace/name` at `version`, or its highest version when `version` is nil.
    public func find(_ reference: TemplateReference) async throws -> StoredTemplate {
        let rows = try await pool.query("""
            SELECT id, version, definition, source, content_hash, registered_at
            FROM orcastra.templates WHERE namespace = \(reference.namespace) AND name = \(reference.name)
            """)
        if let stored = try Self.select(reference, from: rows.rows) { return stored }
        if reference.version == nil, !rows.rows.isEmpty {
            let versions = try rows.rows.map { try SemanticVersion(parsing: try $0.decode("version", as: String.self)) }.sorted()
            throw StoreError.onlyPrereleases(reference: reference.description, versions: versions.map(\.description))
        }
        let closest = try await suggestions(for: reference)
        throw StoreError.templateNotFound(reference: reference.description, suggestions: closest)
    }

    /// The row of the wanted version, or without one the highest release (a prerelease is only
    /// ever run when pinned: `ns/name@2.0.0-rc.1`), decoded. Synchronous on purpose: Swift 6.3's
    /// optimizer crashed splitting the async `find` when this work was inline.
    static func select(_ reference: TemplateReference, from rows: [PostgresRow]) throws -> StoredTemplate? {
        var best: (SemanticVersion, PostgresRow)?
        for row in rows {
            let version = try SemanticVersion(parsing: try row.decode("version", as: String.self))
            if let wanted = reference.version {
                if version == wanted { best = (version, row) }
            } else if version.prerelease.isEmpty, best == nil || best!.0 < version {
                best = (version, row)
            }
        }
        guard let row = best?.1 else { return nil }
        return StoredTemplate(
            id: try row.decode("id"),
            template: try WorkflowTemplate(normalizedJSON: try row.decode("definition", as: String.self)),
            source: try row.decode("source"),
            contentHash: try row.decode("content_hash"),
            registeredAt: try row.decode("registered_at")
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

    public init(parsing text: String) throws {
        let (path, version) = text.split(separator: "@", maxSplits: 1).map(String.init).splitPair()
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw TemplateReferenceError(text: text, reason: "write it as NAMESPACE/NAME or NAMESPACE/NAME@VERSION, e.g. examples/linear@1.0.0")
        }
        for part in parts where !TemplateNames.isValid(part) {
            throw TemplateReferenceError(text: text, reason: "'\(part.prefix(40))' is not a valid name (a lowercase letter, then lowercase letters, digits, _ or -; see docs/templates.md)")
        }
        namespace = parts[0]
        name = parts[1]
        if let version {
            do { self.version = try SemanticVersion(parsing: version) } catch {
                throw TemplateReferenceError(text: text, reason: "\(version) is not a semantic version like 1.2.0")
            }
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

extension Array where Element == String {
    fileprivate func splitPair() -> (String, String?) {
        (first ?? "", count > 1 ? self[1] : nil)
    }
}
