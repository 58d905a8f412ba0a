import OrcastraPostgres
import OrcastraTemplates

/// Templates by id, read once per worker: the definition tells a claimed step what to run.
actor TemplateCache {
    private let slot: ConnectionSlot
    private var templates: [Int64: WorkflowTemplate] = [:]

    init(slot: ConnectionSlot) { self.slot = slot }

    func template(_ id: Int64) async throws -> WorkflowTemplate {
        if let cached = templates[id] { return cached }
        let connection = try await slot.get()
        let text = try await connection.queryRow("SELECT definition FROM orcastra.templates WHERE id = \(id)").decode("definition", as: String.self)
        let template = try WorkflowTemplate(normalizedJSON: text)
        templates[id] = template
        return template
    }
}
