import Foundation
import OrcastraPostgres
import OrcastraTesting
import Testing

/// Group commit of `POST /v1/tasks` on a real port: submissions arriving together share a
/// transaction, and each still gets its own answer. `--http-pool-size 2` leaves one batch in
/// flight, so requests sent at once queue behind it and go together.
@Suite(.serialized, .timeLimit(.minutes(5))) struct SubmissionBatchTests {
    static let limited = """
        namespace: shop
        name: limited
        version: 1.0.0
        concurrency: {key: "$.context.customer", limit: 100}
        steps:
          - {name: a, handler: shop.a}
        """

    /// Sends every body at once; returns (status, body) in the order given.
    static func submitAll(_ api: APIFixture, token: String,
                          _ requests: [(json: String, key: String?)]) async throws -> [(Int, [String: Any])] {
        let raw = try await withThrowingTaskGroup(of: (Int, Int, Data).self) { group in
            for (index, request) in requests.enumerated() {
                group.addTask {
                    let (status, _, body) = try await api.request("POST", "/v1/tasks", token: token, json: request.json,
                                                                  headers: request.key.map { ["Idempotency-Key": $0] } ?? [:])
                    return (index, status, body)
                }
            }
            var answers = [(Int, Data)](repeating: (0, Data()), count: requests.count)
            for try await (index, status, body) in group { answers[index] = (status, body) }
            return answers
        }
        return raw.map { status, data in
            (status, (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? ["raw": String(decoding: data, as: UTF8.self)])
        }
    }

    @Test("concurrent submissions share commits; each gets its own task, key and refusal", .timeLimit(.minutes(5)))
    func concurrentSubmissions() async throws {
        let api = try await APIFixture(arguments: ["--http-pool-size", "2"])
        defer { Task { await api.shutdown() } }
        let admin = try await api.admin()
        try await api.registerOrder()
        var (status, _, body) = try await api.object("POST", "/v1/templates", token: admin, body: Data(Self.limited.utf8),
                                                     contentType: "application/yaml")
        #expect(status == 201, "\(body)")

        // 60 at once: 40 plain (each its own order_id), 10 with one Idempotency-Key, 5 refused by
        // the database inside a batch (no concurrency key: 422), 5 refused before it (schema: 422).
        var requests: [(json: String, key: String?)] = []
        for index in 0..<60 {
            switch index % 6 {
            case 1 where index < 60: requests.append((#"{"template": "shop/order", "context": {"order_id": 7}}"#, "same-key"))
            case 3 where index < 30: requests.append((#"{"template": "shop/limited", "context": {"other": 1}}"#, nil))
            case 5 where index < 30: requests.append((#"{"template": "shop/order", "context": {"order_id": "text"}}"#, nil))
            default: requests.append((#"{"template": "shop/order", "context": {"order_id": \#(index)}}"#, nil))
            }
        }
        let answers = try await Self.submitAll(api, token: admin, requests)

        var plain: [String: Int] = [:]  // task id → the order_id sent
        var keyed: [String] = []
        var keyedCreated = 0
        for (index, (status, body)) in answers.enumerated() {
            let request = requests[index].json
            if requests[index].key != nil {
                #expect(status == 201 || status == 200, "\(status) \(body)")
                keyed.append(body["id"] as? String ?? "?")
                if status == 201 { keyedCreated += 1 }
            } else if request.contains("shop/limited") {
                #expect(status == 422 && (body["detail"] as? String)?.contains("concurrency key") == true, "\(status) \(body)")
            } else if request.contains(#""text""#) {
                #expect(status == 422 && body["type"] as? String != nil, "\(status) \(body)")
            } else {
                #expect(status == 201, "\(status) \(body)")
                plain[body["id"] as? String ?? "?"] = index
            }
        }
        let plainCount = requests.indices.filter { requests[$0].key == nil && !requests[$0].json.contains("limited") && !requests[$0].json.contains(#""text""#) }.count
        #expect(plain.count == plainCount, "every plain submission got a task of its own")
        #expect(Set(keyed).count == 1 && keyedCreated == 1, "one key, one task, one 201: \(keyed)")

        // Nothing lost, nothing doubled; each task holds the context its request sent; and fewer
        // transactions than tasks (a transaction's tasks share created_at, its start time).
        let url = api.cluster.url
        let rows = try await psql(url, "SELECT id || ' ' || coalesce(context->>'order_id', '-') FROM orcastra.tasks")
        #expect(rows.count == plainCount + 1, "\(rows)")
        for row in rows {
            let parts = row.split(separator: " ").map(String.init)
            if let index = plain[parts[0]] { #expect(parts[1] == "\(index)", "\(row)") } else { #expect(parts[1] == "7" && parts[0] == keyed[0]) }
        }
        let transactions = try await psql(url, "SELECT count(DISTINCT created_at)::text FROM orcastra.tasks")
        #expect(Int(transactions.first ?? "") ?? 99 < rows.count, "\(transactions) transactions for \(rows.count) tasks: nothing was grouped")
        (status, _, body) = try await api.object("GET", "/readyz")
        #expect(status == 200)
        #expect(!api.cluster.logs.contains("internal error"), "\(api.cluster.logs)")
    }

    @Test("a lone submission is answered at once", .timeLimit(.minutes(5)))
    func loneSubmission() async throws {
        let api = try await APIFixture(arguments: ["--http-pool-size", "1"])
        defer { Task { await api.shutdown() } }
        let admin = try await api.admin()
        try await api.registerOrder()
        for order in 1...3 {
            let started = ContinuousClock.now
            let (status, _, body) = try await api.object("POST", "/v1/tasks", token: admin, json: #"{"template": "shop/order", "context": {"order_id": \#(order)}}"#)
            #expect(status == 201, "\(body)")
            #expect(ContinuousClock.now - started < .seconds(2))
        }
    }

    @Test("--http-pool-size is checked, from a flag or ORCASTRA_HTTP_POOL_SIZE, and shown by config show", .timeLimit(.minutes(5)))
    func poolSizeOption() async throws {
        let orchestrator = CommandLineTool("orcastra-orchestrator")
        let noDatabase = ["ORCASTRA_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"]
        let zero = try await orchestrator.run(["--http-address", "127.0.0.1:1", "--http-pool-size", "0"], environment: noDatabase)
        #expect(zero.status == 64 && zero.standardError.contains("--http-pool-size must be between 1 and 500"), "\(zero.output)")
        let fromEnvironment = try await orchestrator.run(["--http-address", "127.0.0.1:1"],
                                                         environment: noDatabase.merging(["ORCASTRA_HTTP_POOL_SIZE": "501"]) { $1 })
        #expect(fromEnvironment.status == 64 && fromEnvironment.standardError.contains("ORCASTRA_HTTP_POOL_SIZE"), "\(fromEnvironment.output)")
        let shown = try await CommandLineTool("orcastra").run(["config", "show", "--for", "orchestrator"],
                                                             environment: ["ORCASTRA_HTTP_POOL_SIZE": "12"])
        #expect(shown.status == 0 && shown.standardOutput.contains("env:ORCASTRA_HTTP_POOL_SIZE"), "\(shown.output)")
    }

    /// The first column of every row, as text.
    func psql(_ url: String, _ query: String) async throws -> [String] {
        let connection = try await PostgresConnection.connect(url)
        let rows = try await connection.query(SQL(unsafeRaw: query)).rows.map { try $0.decode(at: 0, as: String.self) }
        await connection.close()
        return rows
    }
}
