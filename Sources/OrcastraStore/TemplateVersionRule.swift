import OrcastraPostgres
import OrcastraTemplates

/// What choosing a version needs to know about one registered version.
public struct RegisteredVersion: Sendable, Hashable {
    public var version: SemanticVersion
    public var isDeprecated: Bool

    public init(_ version: SemanticVersion, deprecated: Bool = false) {
        self.version = version
        isDeprecated = deprecated
    }
}

/// Which version a reference without one (`ns/name`) takes: the template's default version when
/// one is set (`orcastra template default`), else its highest release that is not deprecated —
/// never a prerelease, never a deprecated version; nil when nothing fits.
///
/// The one place Swift decides it (`TemplateRegistry.find` and `list`, so `submit`, `template
/// show|list|default|diff`). SQL decides the same in `create_task_by_name`
/// (Migrations/functions/create_task.sql), and TemplateLifecycleTests checks both take the same
/// version step by step. A pinned deprecated version is refused by the database (`create_task`),
/// which alone knows whether an idempotency key makes it a repeat rather than a new task.
public enum TemplateVersionRule {
    public static func unpinned(among versions: [RegisteredVersion], defaultVersion: SemanticVersion?) -> SemanticVersion? {
        if let defaultVersion { return defaultVersion }
        return versions.filter { $0.version.prerelease.isEmpty && !$0.isDeprecated }.map(\.version).max()
    }
}

/// The versions of one template as the registry holds them: ids, deprecation and the default.
struct TemplateVersions {
    var namespace: String
    var name: String
    var entries: [(id: Int64, version: RegisteredVersion)]
    var defaultVersion: SemanticVersion?

    /// Rows of `id`, `version`, `deprecated` and `default_version` (the same on every row).
    init(namespace: String, name: String, rows: [PostgresRow]) throws {
        self.namespace = namespace
        self.name = name
        entries = try rows.map { row in
            (id: try row.decode("id"),
             version: RegisteredVersion(try SemanticVersion(parsing: try row.decode("version", as: String.self)),
                                        deprecated: try row.decode("deprecated")))
        }.sorted { $0.version.version < $1.version.version }
        defaultVersion = try rows.first?.decode("default_version", as: String?.self).map { try SemanticVersion(parsing: $0) }
    }

    static func query(namespace: String, name: String) -> SQL {
        """
        SELECT t.id, t.version, t.deprecated_at IS NOT NULL AS deprecated, d.version AS default_version
        FROM orcastra.templates t
        LEFT JOIN orcastra.template_defaults d ON d.namespace = t.namespace AND d.name = t.name
        WHERE t.namespace = \(namespace) AND t.name = \(name)
        """
    }

    var unpinned: SemanticVersion? {
        TemplateVersionRule.unpinned(among: entries.map(\.version), defaultVersion: defaultVersion)
    }

    func id(of version: SemanticVersion) -> Int64? {
        entries.first { $0.version.version == version }?.id
    }

    /// Why a reference without a version takes nothing: prereleases only, or every release deprecated.
    func unpinnedRefusal(_ reference: String) -> StoreError {
        if entries.allSatisfy({ !$0.version.version.prerelease.isEmpty }) {
            return .onlyPrereleases(reference: reference, versions: entries.map(\.version.version.description))
        }
        return .noReleaseToTake(reference: reference,
                                versions: entries.map { $0.version.version.description + ($0.version.isDeprecated ? " deprecated" : "") },
                                highestRelease: entries.last { $0.version.version.prerelease.isEmpty }!.version.version.description)
    }
}
