import Foundation
import OrcastraStore
import Synchronization

/// The template a submission's reference names, remembered for a moment.
///
/// Without it every `POST /v1/tasks` costs two lookups before the one statement that creates the
/// task (the versions, then the chosen definition): three round trips instead of one. Versions are
/// immutable and `create_task` refuses a deprecated one itself, so what a cached entry can get
/// wrong is only which version an unpinned reference (`ns/name`) takes: a new default or a new
/// release is taken up to `lifetime` later (1 s).
final class TemplateLookupCache: Sendable {
    let registry: TemplateRegistry
    let lifetime: Duration
    private let entries = Mutex<[String: (template: StoredTemplate, until: ContinuousClock.Instant)]>([:])

    init(registry: TemplateRegistry, lifetime: Duration = .seconds(1)) {
        self.registry = registry
        self.lifetime = lifetime
    }

    func find(_ reference: TemplateReference) async throws -> StoredTemplate {
        let key = reference.description
        let now = ContinuousClock.now
        if let entry = entries.withLock({ $0[key] }), entry.until > now { return entry.template }
        let stored = try await registry.find(reference)
        entries.withLock { entries in
            if entries.count > 1_000 { entries.removeAll() }
            entries[key] = (stored, now + lifetime)
        }
        return stored
    }
}
