import OrcastraTemplates

/// What the store refuses, each as one sentence that says what to do.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    /// No template has that reference; `suggestions` are the closest registered ones.
    case templateNotFound(reference: String, suggestions: [String])
    /// An unpinned reference (`ns/name`) takes the highest release; this template has prereleases only.
    case onlyPrereleases(reference: String, versions: [String])
    /// This version is registered already with other content.
    case versionConflict(reference: String)
    /// The task's context does not match the template's input schema.
    case contextInvalid(template: String, violations: [SchemaViolation])
    /// The task's context is larger than ``StoreLimits/maximumContextBytes`` of JSON text.
    case contextTooLarge(bytes: Int, limit: Int)
    /// The task's context holds what PostgreSQL's jsonb cannot store (`JSONValue.unstorableReason()`).
    case contextUnstorable(reason: String)
    /// The database has no Orcastra schema yet.
    case notMigrated
    case taskNotFound(String)

    public var description: String {
        switch self {
        case .templateNotFound(let reference, let suggestions):
            let hint = suggestions.isEmpty
                ? "Register it first with `orcastra template register FILE`."
                : "Did you mean \(suggestions.joined(separator: " or "))?"
            return "No template \(reference) is registered. \(hint)"
        case .onlyPrereleases(let reference, let versions):
            return "\(reference) has prerelease versions only (\(versions.joined(separator: ", "))), and a reference without a version takes the highest release. Pin one, e.g. \(reference)@\(versions.last!)."
        case .versionConflict(let reference):
            return "Template \(reference) is already registered with different content. A version is immutable: bump `version` in the file and register again."
        case .contextInvalid(let template, let violations):
            let list = violations.map(\.description).joined(separator: "; ")
            return "The context does not match the input schema of \(template): \(list)."
        case .contextTooLarge(let bytes, let limit):
            return "The context is \(bytes) bytes of JSON, more than the limit of \(limit) bytes (1 MiB); nothing was written. Keep large data outside Orcastra (a file, a bucket, a table) and put a reference to it in the context."
        case .contextUnstorable(let reason):
            return "The context cannot be stored: \(reason). Nothing was written; remove it, or encode binary data (e.g. as base64)."
        case .notMigrated:
            return "This database has no Orcastra schema. Run `orcastra migrate` first."
        case .taskNotFound(let id):
            return "No task with id \(id)."
        }
    }
}
