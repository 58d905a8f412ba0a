import Foundation
import OrcastraClient
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting

/// A client on a fresh migrated database, with templates registered from YAML text and helpers
/// that move steps the way a worker would, with plain SQL (no worker runs in these tests).
struct ClientFixture {
    let client: OrcastraClient
    let pool: PostgresPool

    init() async throws {
        client = OrcastraClient(conninfo: try await TestDatabases.shared.makeDatabase(), maximumConnections: 4)
        pool = client.pool
        for yaml in [Self.diamond, Self.single, Self.other] {
            let template = try TemplateParser.parse(yaml: yaml, file: "test.yaml")
            _ = try await TemplateRegistry(pool: pool).register(LoadedTemplate(file: "test.yaml", source: yaml, template: template))
        }
    }

    func submit(_ reference: String, _ context: JSONValue = .object([:]), key: String? = nil, runAt: Date? = nil) async throws -> UUID {
        try await client.submit(TaskRequest(template: try TemplateReference(parsing: reference), context: context,
                                            idempotencyKey: key, runAt: runAt)).taskID
    }

    func stepID(_ task: UUID, _ name: String) async throws -> Int64 {
        try await pool.query("SELECT id FROM orcastra.steps WHERE task_id = \(task) AND name = \(name)").first!.decode("id")
    }

    /// enqueued → in_progress → error, then lets the task settle (to `error` when nothing else runs).
    func fail(_ task: UUID, _ name: String, error: String = "boom") async throws {
        let id = try await stepID(task, name)
        try await pool.query("UPDATE orcastra.steps SET state = 'in_progress', state_reason = 'claimed', attempts = attempts + 1, started_at = now() WHERE id = \(id)")
        try await pool.query("""
            UPDATE orcastra.steps SET state = 'error', state_reason = 'permanent failure', last_error = \(error), finished_at = now()
            WHERE id = \(id)
            """)
        try await pool.query("SELECT orcastra.settle_tasks(ARRAY[\(task)]::uuid[])")
    }

    /// Runs a step to completion through the worker protocol (claim, then complete), which also
    /// releases its children and settles the task.
    func complete(_ task: UUID, _ name: String, namespace: String, result: String = "{}") async throws {
        let claimed = try await pool.query("SELECT step_id, lease_token FROM orcastra.claim_steps(\(namespace), 'test-worker', 100, 60000)")
        let wanted = try await stepID(task, name)
        for row in claimed {
            let id: Int64 = try row.decode("step_id")
            let token: UUID = try row.decode("lease_token")
            if id == wanted {
                try await pool.query("SELECT * FROM orcastra.complete_steps(ARRAY[\(id)]::bigint[], ARRAY[\(token)]::uuid[], ARRAY[\(JSONText(result))]::jsonb[])")
            } else {
                try await pool.query("SELECT * FROM orcastra.release_steps(ARRAY[\(id)]::bigint[], ARRAY[\(token)]::uuid[])")
            }
        }
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
        steps:
          - {name: start, handler: shop.start}
          - {name: left, handler: shop.left, depends_on: [start]}
          - {name: right, handler: shop.right, depends_on: [start]}
          - {name: join, handler: shop.join, depends_on: [left, right]}
        """

    static let single = """
        namespace: shop
        name: single
        version: 1.0.0
        steps:
          - {name: only, handler: shop.only}
        """

    static let other = """
        namespace: billing
        name: invoice
        version: 2.0.0
        steps:
          - {name: bill, handler: billing.bill}
          - {name: mail, handler: billing.mail, depends_on: [bill]}
        """
}
