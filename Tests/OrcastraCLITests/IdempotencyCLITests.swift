import Foundation
import OrcastraPostgres
import OrcastraTesting
import Testing

/// `submit --idempotency-key` through the built binary: a key belongs to one template, `--json`
/// reports the template of the task it returns, and another context under a used key is named.
@Suite(.timeLimit(.minutes(5))) struct IdempotencyCLITests {
    let cli = TaskCLITests()

    func object(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
    }

    @Test func aKeyBelongsToOneTemplate() async throws {
        let (url, pool) = try await cli.database()
        defer { Task { await pool.shutdown() } }
        let single = try await cli.submit(["shop/single", "--idempotency-key", "order-7", "--json"], url)
        #expect(single.status == 0, "\(single.output)")
        let first = try object(single.standardOutput)
        #expect(first["created"] as? Bool == true)

        // The same key under another template makes a task of that template.
        let diamond = try await cli.submit(["shop/diamond", "--context", #"{"order_id": 7}"#, "--idempotency-key", "order-7", "--json"], url)
        #expect(diamond.status == 0, "\(diamond.output)")
        let second = try object(diamond.standardOutput)
        #expect(second["created"] as? Bool == true, "\(diamond.output)")
        #expect(second["template"] as? String == "shop/diamond@1.0.0")
        #expect(second["task_id"] as? String != first["task_id"] as? String)
        #expect(!diamond.standardError.contains("already has idempotency key"), "\(diamond.output)")

        // And within each template the key still returns its task.
        let again = try object(try await cli.submit(["shop/diamond", "--context", #"{"order_id": 7}"#, "--idempotency-key", "order-7", "--json"], url).standardOutput)
        #expect(again["created"] as? Bool == false && again["task_id"] as? String == second["task_id"] as? String)
        #expect(again["context_differs"] as? Bool == false)
        let singleAgain = try object(try await cli.submit(["shop/single", "--idempotency-key", "order-7", "--json"], url).standardOutput)
        #expect(singleAgain["created"] as? Bool == false && singleAgain["task_id"] as? String == first["task_id"] as? String)
        #expect(singleAgain["template"] as? String == "shop/single@1.0.0")
        #expect(try await pool.query("SELECT count(*) AS n FROM orcastra.tasks WHERE idempotency_key = 'order-7'").first!.decode("n", as: Int.self) == 2)
        // The SQL entry point scopes keys the same way.
        let viaSQL = try await pool.query("""
            SELECT task_id::text AS id, created FROM orcastra.create_task_by_name('shop', 'single', p_idempotency_key => 'order-7')
            """).first!
        #expect(try viaSQL.decode("id", as: String.self) == first["task_id"] as? String)
        #expect(try !viaSQL.decode("created", as: Bool.self))
    }

    @Test func aRepeatedKeyReportsTheTasksTemplateAndAnotherContext() async throws {
        let (url, pool) = try await cli.database()
        defer { Task { await pool.shutdown() } }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("orcastra-keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try "namespace: shop\nname: single\nversion: 1.1.0\nsteps:\n  - {name: only, handler: shop.only}\n"
            .write(to: folder.appendingPathComponent("single-1.1.0.yaml"), atomically: true, encoding: .utf8)
        #expect(try await cli.orcastra.run(["template", "register", folder.path, "--database-url", url]).status == 0)

        let pinned = try object(try await cli.submit(["shop/single@1.0.0", "--idempotency-key", "k", "--context", #"{"a": 1}"#, "--json"], url).standardOutput)
        #expect(pinned["template"] as? String == "shop/single@1.0.0" && pinned["created"] as? Bool == true)

        // Unpinned now means 1.1.0, but the key's task runs 1.0.0: that is what --json says.
        let same = try await cli.submit(["shop/single", "--idempotency-key", "k", "--context", #"{"a": 1.0}"#, "--json"], url)
        #expect(same.status == 0, "\(same.output)")
        let sameAnswer = try object(same.standardOutput)
        #expect(sameAnswer["task_id"] as? String == pinned["task_id"] as? String)
        #expect(sameAnswer["created"] as? Bool == false)
        #expect(sameAnswer["template"] as? String == "shop/single@1.0.0", "\(same.output)")
        #expect(sameAnswer["context_differs"] as? Bool == false)
        #expect(same.standardError.contains("note: task \(pinned["task_id"] as? String ?? "?") already has idempotency key 'k'"), "\(same.output)")
        #expect(!same.standardError.contains("warning"), "\(same.output)")

        // Another context under the key: still that task (exit 0), and a warning says the context was not used.
        let other = try await cli.submit(["shop/single", "--idempotency-key", "k", "--context", #"{"a": 2}"#, "--json"], url)
        #expect(other.status == 0, "\(other.output)")
        let otherAnswer = try object(other.standardOutput)
        #expect(otherAnswer["created"] as? Bool == false && otherAnswer["context_differs"] as? Bool == true, "\(other.output)")
        #expect(otherAnswer["task_id"] as? String == pinned["task_id"] as? String)
        #expect(other.standardError.contains("warning: task \(pinned["task_id"] as? String ?? "?") already has idempotency key 'k' for shop/single, with another context"), "\(other.output)")
        #expect(other.standardError.contains("the context given now was not used"), "\(other.output)")
        let plain = try await cli.submit(["shop/single", "--idempotency-key", "k"], url)
        #expect(plain.status == 0 && plain.standardError.contains("with another context"), "\(plain.output)")
        #expect(plain.standardOutput == "\(pinned["task_id"] as? String ?? "?")\n")
        // A fresh submission says nothing of contexts.
        let fresh = try object(try await cli.submit(["shop/single", "--json"], url).standardOutput)
        #expect(fresh["created"] as? Bool == true && fresh["context_differs"] as? Bool == false && fresh["template"] as? String == "shop/single@1.1.0")
        let stored = try await pool.query("SELECT context::text AS context FROM orcastra.tasks WHERE idempotency_key = 'k'").first!
        #expect(try stored.decode("context", as: String.self) == #"{"a": 1}"#)
    }
}
