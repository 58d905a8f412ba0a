import Foundation
import OrcastraPostgres
import OrcastraStateMachines
import OrcastraTemplates

/// A template's default version, and what a reference without a version takes because of it.
public struct DefaultVersion: Sendable, Equatable {
    public var namespace: String
    public var name: String
    /// The version set with ``TemplateRegistry/setDefault(namespace:name:version:)``, if any.
    public var defaultVersion: SemanticVersion?
    /// The default before the call that returned this (the same as `defaultVersion` when nothing changed).
    public var previousDefault: SemanticVersion?
    /// What `ns/name` takes now (``TemplateVersionRule``); nil when no version fits.
    public var unpinnedVersion: SemanticVersion?

    public var template: String { "\(namespace)/\(name)" }
}

/// A version's deprecation after `deprecate` or `undeprecate`.
public struct Deprecation: Sendable, Equatable {
    public var reference: TemplateReference
    /// Nil when it is not deprecated (any more).
    public var deprecatedAt: Date?
    public var reason: String?
    /// The call changed something (false: it was already deprecated, or already not).
    public var changed: Bool
    /// What `ns/name` takes now.
    public var unpinnedVersion: SemanticVersion?
}

/// The lifecycle of registered versions, through the SQL functions of
/// Migrations/functions/template_lifecycle.sql, so that every language changes it the same way.
/// A version's content never changes; only which version is the default and which are deprecated.
extension TemplateRegistry {
    /// The default version of `namespace/name` and what an unpinned reference takes.
    public func defaultVersion(namespace: String, name: String) async throws -> DefaultVersion {
        let versions = try await versions(namespace: namespace, name: name)
        return DefaultVersion(namespace: namespace, name: name, defaultVersion: versions.defaultVersion,
                              previousDefault: versions.defaultVersion, unpinnedVersion: versions.unpinned)
    }

    /// Sets the default version of `namespace/name` (nil clears it: back to the highest release
    /// that is not deprecated).
    ///
    /// - Throws: `StoreError.templateNotFound` for an unknown version or template,
    ///   `StoreError.deprecatedCannotBeDefault` for a deprecated version.
    public func setDefault(namespace: String, name: String, version: SemanticVersion?) async throws -> DefaultVersion {
        let reference = TemplateReference(namespace: namespace, name: name, version: version)
        let previous: String?
        do {
            previous = try await pool.query("""
                SELECT orcastra.set_default_version(\(namespace), \(name), \(version?.description)::text) AS previous
                """).first?.decode("previous")
        } catch let error as PostgresError {
            throw try await storeError(error, reference) { .deprecatedCannotBeDefault(reference: reference.description) }
        }
        let versions = try await versions(namespace: namespace, name: name)
        return DefaultVersion(namespace: namespace, name: name, defaultVersion: versions.defaultVersion,
                              previousDefault: try previous.map { try SemanticVersion(parsing: $0) }, unpinnedVersion: versions.unpinned)
    }

    /// Deprecates a pinned version: tasks made from it go on; new ones are refused unless they pin
    /// it and allow it. Again on a deprecated version it keeps the first time and takes a new reason.
    ///
    /// - Throws: `TemplateReferenceError` without a version, `StoreError.templateNotFound`,
    ///   `StoreError.defaultCannotBeDeprecated` for the default version.
    public func deprecate(_ reference: TemplateReference, reason: String?) async throws -> Deprecation {
        let version = try Self.pinned(reference, action: "deprecate")
        let row: PostgresRow?
        do {
            row = try await pool.query("""
                SELECT deprecated_at, deprecation_reason, changed
                FROM orcastra.deprecate_template(\(reference.namespace), \(reference.name), \(version.description), \(reason)::text)
                """).first
        } catch let error as PostgresError {
            throw try await storeError(error, reference) { .defaultCannotBeDeprecated(reference: reference.description) }
        }
        let versions = try await versions(namespace: reference.namespace, name: reference.name)
        return Deprecation(reference: reference, deprecatedAt: try row?.decode("deprecated_at"),
                           reason: try row?.decode("deprecation_reason"), changed: try row?.decode("changed") ?? false,
                           unpinnedVersion: versions.unpinned)
    }

    /// Lifts the deprecation of a pinned version.
    public func undeprecate(_ reference: TemplateReference) async throws -> Deprecation {
        let version = try Self.pinned(reference, action: "undeprecate")
        let changed: Bool
        do {
            changed = try await pool.query("""
                SELECT orcastra.undeprecate_template(\(reference.namespace), \(reference.name), \(version.description)) AS changed
                """).first?.decode("changed") ?? false
        } catch let error as PostgresError {
            throw try await storeError(error, reference) { nil }
        }
        let versions = try await versions(namespace: reference.namespace, name: reference.name)
        return Deprecation(reference: reference, deprecatedAt: nil, reason: nil, changed: changed, unpinnedVersion: versions.unpinned)
    }

    /// Every version of a template; throws `templateNotFound` when there is none.
    func versions(namespace: String, name: String) async throws -> TemplateVersions {
        let rows = try await pool.query(TemplateVersions.query(namespace: namespace, name: name))
        guard !rows.rows.isEmpty else {
            let reference = TemplateReference(namespace: namespace, name: name)
            throw StoreError.templateNotFound(reference: reference.description, suggestions: try await suggestions(for: reference))
        }
        return try TemplateVersions(namespace: namespace, name: name, rows: rows.rows)
    }

    static func pinned(_ reference: TemplateReference, action: String) throws -> SemanticVersion {
        guard let version = reference.version else {
            throw TemplateReferenceError(text: reference.description,
                                         reason: "name the version to \(action), as \(reference.namespace)/\(reference.name)@VERSION")
        }
        return version
    }

    /// OR003 → not found (with the closest names), OR002 → `refusal`; anything else as it is.
    private func storeError(_ error: PostgresError, _ reference: TemplateReference,
                            refusal: () -> StoreError?) async throws -> any Error {
        switch error.sqlState {
        case OrcastraSQLState.templateNotFound.rawValue:
            return StoreError.templateNotFound(reference: reference.description, suggestions: try await suggestions(for: reference))
        case OrcastraSQLState.refusedOperatorAction.rawValue:
            return refusal() ?? error
        default:
            return error
        }
    }
}
