import Foundation
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting

/// A pool on a fresh migrated database, plus helpers to register templates from YAML text.
struct StoreFixture {
    let pool: PostgresPool
    let registry: TemplateRegistry
    let creator: TaskCreator

    init() async throws {
        pool = PostgresPool(conninfo: try await TestDatabases.shared.makeDatabase(), maximumConnections: 4)
        registry = TemplateRegistry(pool: pool)
        creator = TaskCreator(pool: pool)
    }

    @discardableResult
    func register(_ yaml: String, file: String = "test.yaml") async throws -> TemplateRegistry.Registration {
        let template = try TemplateParser.parse(yaml: yaml, file: file)
        return try await registry.register(LoadedTemplate(file: file, source: yaml, template: template))
    }

    func count(_ sql: SQL) async throws -> Int {
        try await pool.query(sql).first!.decode(at: 0, as: Int.self)
    }

    static let diamond = """
        namespace: shop
        name: diamond
        version: 1.0.0
        input_schema:
          type: object
          required: [order_id]
          properties:
            order_id: {type: integer}
            channel: {type: string, enum: [web, store]}
        steps:
          - {name: start, handler: shop.start}
          - {name: left, handler: shop.left, depends_on: [start]}
          - {name: right, handler: shop.right, depends_on: [start], namespace: billing}
          - {name: join, handler: shop.join, depends_on: [left, right], retry: {max_attempts: 7}}
        """

    /// A chain of `count` steps: s0 → s1 → … (the deepest DAG of that size).
    static func chain(_ count: Int, name: String = "chain") -> String {
        var yaml = "namespace: bench\nname: \(name)\nversion: 1.0.0\nsteps:\n"
        for index in 0..<count {
            yaml += "  - {name: s\(index), handler: bench.noop\(index == 0 ? "" : ", depends_on: [s\(index - 1)]")}\n"
        }
        return yaml
    }
}
