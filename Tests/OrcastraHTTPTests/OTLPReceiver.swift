import Foundation
import Hummingbird
import OrcastraTesting
import Synchronization

/// A test OTLP/HTTP receiver (`POST /v1/traces`, JSON encoding: `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`)
/// that keeps every span it is sent, with the service that sent it. Run it with `start()`, stop it
/// with `stop()`.
final class OTLPReceiver: Sendable {
    struct ReceivedSpan: Sendable, CustomStringConvertible {
        var service: String
        var traceID: String
        var spanID: String
        var parentSpanID: String
        var name: String
        /// OTLP's SpanKind: 2 server, 5 consumer.
        var kind: Int
        var attributes: [String: String]
        /// 0 unset, 1 ok, 2 error.
        var statusCode: Int
        var statusMessage: String
        var events: [String]

        var description: String {
            "\(service) \(name) trace=\(traceID) span=\(spanID) parent=\(parentSpanID) status=\(statusCode) \(attributes)"
        }
    }

    let port: Int
    private let spans = Mutex<[ReceivedSpan]>([])
    private let running = Mutex<Task<Void, Never>?>(nil)
    private let up = Mutex(false)

    init() throws {
        port = try APIFixture.freePort()
    }

    var endpoint: String { "http://127.0.0.1:\(port)" }
    var received: [ReceivedSpan] { spans.withLock { $0 } }

    func start() async throws {
        let router = Router()
        router.post("/v1/traces") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 16 << 20)
            let spans = try Self.parse(Data(buffer: body))
            self.spans.withLock { $0.append(contentsOf: spans) }
            var response = Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "{}")))
            response.headers[.contentType] = "application/json"
            return response
        }
        let app = Application(router: router,
                              configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: port)),
                              onServerRunning: { _ in self.up.withLock { $0 = true } })
        running.withLock { $0 = Task { try? await app.run() } }
        let listening = await waitUntil(within: .seconds(30)) { self.up.withLock { $0 } }
        guard listening else { throw CancellationError() }
    }

    func stop() {
        running.withLock { $0?.cancel() }
    }

    /// The spans of an OTLP `ExportTraceServiceRequest` in its JSON encoding. Ids arrive hex
    /// encoded as OTLP/JSON specifies, or base64 as protobuf's generic JSON mapping writes bytes:
    /// both are read, and kept as lowercase hex.
    static func parse(_ data: Data) throws -> [ReceivedSpan] {
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [] }
        var result: [ReceivedSpan] = []
        for resourceSpans in root["resourceSpans"] as? [[String: Any]] ?? [] {
            let resource = attributes((resourceSpans["resource"] as? [String: Any])?["attributes"])
            for scopeSpans in resourceSpans["scopeSpans"] as? [[String: Any]] ?? [] {
                for span in scopeSpans["spans"] as? [[String: Any]] ?? [] {
                    let status = span["status"] as? [String: Any] ?? [:]
                    result.append(ReceivedSpan(
                        service: resource["service.name"] ?? "",
                        traceID: hex(span["traceId"]), spanID: hex(span["spanId"]), parentSpanID: hex(span["parentSpanId"]),
                        name: span["name"] as? String ?? "", kind: integer(span["kind"]),
                        attributes: attributes(span["attributes"]),
                        statusCode: integer(status["code"]), statusMessage: status["message"] as? String ?? "",
                        events: (span["events"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }))
                }
            }
        }
        return result
    }

    private static func integer(_ value: Any?) -> Int {
        if let number = value as? Int { return number }
        if let text = value as? String { return Int(text) ?? 0 }
        return 0
    }

    private static func hex(_ value: Any?) -> String {
        guard let text = value as? String, !text.isEmpty else { return "" }
        if text.count % 16 == 0, text.allSatisfy(\.isHexDigit) { return text.lowercased() }
        guard let bytes = Data(base64Encoded: text) else { return text }
        return bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// OTLP `KeyValue`s as text: string, int (a decimal string in JSON), bool or double values.
    private static func attributes(_ value: Any?) -> [String: String] {
        var result: [String: String] = [:]
        for pair in value as? [[String: Any]] ?? [] {
            guard let key = pair["key"] as? String, let value = pair["value"] as? [String: Any], let first = value.first else { continue }
            result[key] = "\(first.value)"
        }
        return result
    }
}
