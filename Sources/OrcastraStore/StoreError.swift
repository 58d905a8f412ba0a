import Foundation
import OrcastraTemplates

/// What the store refuses, each as one sentence that says what to do.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    /// No template has that reference; `suggestions` are the closest registered ones.
    case templateNotFound(reference: String, suggestions: [String])
    /// An unpinned reference (`ns/name`) takes the highest release; this template has prereleases only.
    case onlyPrereleases(reference: String, versions: [String])
    /// An unpinned reference takes the default version, else the highest release that is not
    /// deprecated; this template has no default and every release is deprecated. `versions` are
    /// all of them, each marked " deprecated" when it is.
    case noReleaseToTake(reference: String, versions: [String], highestRelease: String)
    /// A new task of a deprecated version, not allowed (`--allow-deprecated`). `unpinnedVersion`
    /// is what a reference without a version takes instead, if anything.
    case templateDeprecated(reference: String, since: Date?, reason: String?, unpinnedVersion: String?)
    /// `template default` named a deprecated version.
    case deprecatedCannotBeDefault(reference: String)
    /// `template deprecate` named the default version.
    case defaultCannotBeDeprecated(reference: String)
    /// This version is registered already with other content.
    case versionConflict(reference: String)
    /// The task's context does not match the template's input schema.
    case contextInvalid(template: String, violations: [SchemaViolation])
    /// The task's context is larger than ``StoreLimits/maximumContextBytes`` of JSON text.
    case contextTooLarge(bytes: Int, limit: Int)
    /// The task's context holds what PostgreSQL's jsonb cannot store (`JSONValue.unstorableReason()`).
    case contextUnstorable(reason: String)
    /// The template's concurrency key selects nothing (or null) in the task's context (SQLSTATE OR010).
    case concurrencyKeyMissing(template: String, key: String)
    /// A `workflow:` step of the template names a template that is not registered (SQLSTATE OR017);
    /// `message` is the database's sentence naming the steps and references.
    case workflowTemplateMissing(message: String)
    /// Registering this template would let `workflow:` steps call back into it (through the
    /// templates registered now): `chain` shows the references, `line` is the step's `workflow:` line.
    case workflowCycle(file: String, line: Int?, step: String, chain: String)
    /// The database has no Orcastra schema yet.
    case notMigrated
    /// A transactional submission on a connection that is not inside an open transaction block
    /// (`status` says what it is instead).
    case notInTransaction(status: String)
    case taskNotFound(String)
    /// A traceparent given with a submission is not a W3C trace context.
    case traceparentInvalid(String)

    public var description: String {
        switch self {
        case .templateNotFound(let reference, let suggestions):
            let hint = suggestions.isEmpty
                ? "Register it first with `orcastra template register FILE`."
                : "Did you mean \(suggestions.joined(separator: " or "))?"
            return "No template \(reference) is registered. \(hint)"
        case .onlyPrereleases(let reference, let versions):
            return "\(reference) has prerelease versions only (\(versions.joined(separator: ", "))), and a reference without a version takes the highest release. Pin one, e.g. \(reference)@\(versions.last!)."
        case .noReleaseToTake(let reference, let versions, let highest):
            return "\(reference) has no release that is not deprecated (\(versions.joined(separator: ", "))) and no default version, and a reference without a version takes the default, else the highest release that is not deprecated. Pin a version (`orcastra submit \(reference)@\(highest) --allow-deprecated`), lift a deprecation (`orcastra template deprecate \(reference)@\(highest) --undo`) or register a new version."
        case .templateDeprecated(let reference, let since, let reason, let unpinned):
            let when = since.map { " (since \($0.formatted(.iso8601))" + (reason.map { ": \($0)" } ?? "") + ")" } ?? ""
            let family = reference.split(separator: "@").first.map(String.init) ?? reference
            let instead = unpinned.map { "Submit \(family) (it takes \($0))" } ?? "Register a newer version"
            return "\(reference) is deprecated\(when): new tasks are refused. \(instead), or run this version anyway with `orcastra submit \(reference) --allow-deprecated`."
        case .deprecatedCannotBeDefault(let reference):
            return "\(reference) is deprecated, and a deprecated version cannot be the default. Lift the deprecation first (`orcastra template deprecate \(reference) --undo`), or choose another version."
        case .defaultCannotBeDeprecated(let reference):
            let family = reference.split(separator: "@").first.map(String.init) ?? reference
            return "\(reference) is the default version, and a default cannot be deprecated. Set another default (`orcastra template default \(family) VERSION`) or clear it (`orcastra template default \(family) --clear`) first."
        case .notInTransaction(let status):
            return "A transactional submission needs a connection inside an open transaction (BEGIN, or PostgresConnection.withTransaction), and this one is \(status); nothing was written. Submit inside withTransaction { }, or use submit(_:) without a connection."
        case .versionConflict(let reference):
            return "Template \(reference) is already registered with different content. A version is immutable: bump `version` in the file and register again."
        case .contextInvalid(let template, let violations):
            let list = violations.map(\.description).joined(separator: "; ")
            return "The context does not match the input schema of \(template): \(list)."
        case .contextTooLarge(let bytes, let limit):
            return "The context is \(bytes) bytes of JSON, more than the limit of \(limit) bytes (1 MiB); nothing was written. Keep large data outside Orcastra (a file, a bucket, a table) and put a reference to it in the context."
        case .concurrencyKeyMissing(let template, let key):
            return "The concurrency key \(key) of \(template) selects nothing in this context, so the task could not be counted under any key; nothing was written. Give the context that field (make it required in the template's input_schema to be told earlier)."
        case .contextUnstorable(let reason):
            return "The context cannot be stored: \(reason). Nothing was written; remove it, or encode binary data (e.g. as base64)."
        case .workflowTemplateMissing(let message):
            return "\(message); nothing was written. Register the templates its workflow: steps call first (`orcastra template register FILE`); a reference without a version needs a release that is not deprecated."
        case .workflowCycle(let file, let line, let step, let chain):
            let place = line.map { "\(file):\($0)" } ?? file
            return "\(place): step '\(step)' makes the sub-workflows recurse: \(chain); a task would start itself again until the depth limit. Nothing was registered: call another template, or break the chain."
        case .notMigrated:
            return "This database has no Orcastra schema. Run `orcastra migrate` first."
        case .traceparentInvalid(let value):
            return "traceparent '\(value)' is not a W3C trace context: give 00-<32 hex digits trace id>-<16 hex digits parent span id>-<2 hex digits flags>, ids not all zero (https://www.w3.org/TR/trace-context/#traceparent-header), or none for a new trace."
        case .taskNotFound(let id):
            return "No task with id \(id)."
        }
    }
}
