import Hummingbird
import Logging
import ServiceLifecycle

/// A worker's `/metrics` listener (`orcastra-worker --metrics-address`): a Hummingbird
/// application with one route, serving the Prometheus export. Unauthenticated, like `/healthz`:
/// bind it to an address only the scraper reaches.
public struct MetricsServer: Service {
    public let host: String
    public let port: Int
    public let logger: Logger

    public init(host: String, port: Int, logger: Logger = Logger(label: "orcastra.metrics")) {
        self.host = host
        self.port = port
        self.logger = logger
    }

    public func run() async throws {
        let router = Router()
        router.get("metrics") { _, _ -> Response in
            Self.response(PrometheusExport.shared.exposition())
        }
        let logger = self.logger
        let application = Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "orcastra"),
            onServerRunning: { channel in
                logger.notice("metrics listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
            },
            logger: logger)
        try await application.run()
    }

    /// The exposition text as an HTTP response, for any Hummingbird router.
    public static func response(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: PrometheusExport.contentType],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}
