import OrcastraPostgres
import OrcastraTemplates

/// Templates by id, read once per worker: the definition tells a claimed step what to run.
/// Read through `orcastra.template_definition`, as a worker role may not SELECT from tables
/// (docs/security.md).
actor TemplateCache {
    private let slot: ConnectionSlot
    private let namespace: String
    private var templates: [Int64: WorkflowTemplate] = [:]

    init(slot: ConnectionSlot, namespace: String) {
        self.slot = slot
        self.namespace = namespace
    }

    func template(_ id: Int64) async throws -> WorkflowTemplate {
        if let cached = templates[id] { return cached }
        let connection = try await slot.get()
        let text = try await connection.queryRow("SELECT orcastra.template_definition(\(id), \(namespace)) AS definition")
            .decode("definition", as: String.self)
        let template = try WorkflowTemplate(normalizedJSON: text)
        templates[id] = template
        return template
    }
}
