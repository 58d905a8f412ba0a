import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import OrcastraPostgres
import OrcastraTesting
import Testing

/// A migrated database, a real `orcastra-orchestrator --http-address` on a free port, and tokens
/// made with the real `orcastra token create`: the API as a user meets it.
final class APIFixture: @unchecked Sendable {
    let cluster: ProcessCluster
    let port: Int
    let base: String
    private(set) var orchestrator: BackgroundProcess?
    private var tokens: [String: String] = [:]

    static let diamond = """
        namespace: shop
        name: order
        version: 1.0.0
        input_schema:
          type: object
          required: [order_id]
          properties:
            order_id: {type: integer}
            email: {type: string}
        steps:
          - {name: charge, handler: shop.charge}
          - {name: ship, handler: shop.ship, depends_on: [charge]}
        """

    /// Starts everything; `arguments` are extra orchestrator options. Call `shutdown()` in a defer.
    init(url: String? = nil, arguments: [String] = [], start: Bool = true, environment: [String: String] = [:]) async throws {
        cluster = try await ProcessCluster(url: url)
        port = try Self.freePort()
        base = "http://127.0.0.1:\(port)"
        if start {
            do {
                try await startOrchestrator(arguments, environment: environment)
            } catch {
                await cluster.shutdown()
                throw error
            }
        }
    }

    func startOrchestrator(_ arguments: [String] = [], environment: [String: String] = [:]) async throws {
        orchestrator = try cluster.orchestrator(["--poll-interval", "200ms", "--http-address", "127.0.0.1:\(port)"] + arguments,
                                                environment: environment)
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let (status, _, _) = try? await request("GET", "/healthz"), status == 200 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the API did not come up on port \(port):\n\(cluster.logs)")
        throw CancellationError()
    }

    func shutdown() async {
        await cluster.shutdown()
    }

    /// A token with `scopes` (comma-separated), made once per fixture by the CLI.
    func token(_ scopes: String, name: String? = nil, expiresIn: String? = nil) async throws -> String {
        let name = name ?? scopes.replacingOccurrences(of: ":", with: "-").replacingOccurrences(of: ",", with: "_")
        if let token = tokens[name] { return token }
        var arguments = ["token", "create", "--name", name, "--scopes", scopes]
        if let expiresIn { arguments += ["--expires-in", expiresIn] }
        let outcome = try await CommandLineTool("orcastra").run(arguments, environment: ["ORCASTRA_DATABASE_URL": cluster.url])
        #expect(outcome.status == 0, "\(outcome.output)")
        let token = outcome.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        tokens[name] = token
        return token
    }

    func admin() async throws -> String { try await token("admin") }

    /// Sends a request; returns the status, the headers and the body.
    func request(_ method: String, _ path: String, token: String? = nil, json: String? = nil, body: Data? = nil,
                 contentType: String? = nil, headers: [String: String] = [:]) async throws -> (Int, [String: String], Data) {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        request.timeoutInterval = 30
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let json {
            request.httpBody = Data(json.utf8)
            request.setValue(contentType ?? "application/json", forHTTPHeaderField: "Content-Type")
        } else if let body {
            request.httpBody = body
            if let contentType { request.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        }
        for (key, value) in headers { request.setValue(value, forHTTPHeaderField: key) }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        var fields: [String: String] = [:]
        for (key, value) in http.allHeaderFields { fields["\(key)".lowercased()] = "\(value)" }
        return (http.statusCode, fields, data)
    }

    /// A request whose answer is a JSON object.
    func object(_ method: String, _ path: String, token: String? = nil, json: String? = nil, body: Data? = nil,
                contentType: String? = nil, headers: [String: String] = [:]) async throws -> (Int, [String: String], [String: Any]) {
        let (status, fields, data) = try await request(method, path, token: token, json: json, body: body, contentType: contentType, headers: headers)
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? ["raw": String(decoding: data, as: UTF8.self)]
        return (status, fields, object)
    }

    /// Registers the test template over the API.
    func registerOrder() async throws {
        let (status, _, body) = try await object("POST", "/v1/templates", token: try await admin(), body: Data(Self.diamond.utf8),
                                                 contentType: "application/yaml")
        #expect(status == 201, "\(body)")
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw POSIXError(.EADDRINUSE) }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
