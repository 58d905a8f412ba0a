import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import OpenAPIHummingbird
import OpenAPIRuntime
import OrcastraClient
import OrcastraDashboard
import OrcastraOrchestrator
import OrcastraPostgres
import OrcastraStore
import ServiceLifecycle
import Tracing

/// Where and how the API listens (`orcastra-orchestrator --http-address`).
public struct HTTPServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Larger request bodies are refused with 413.
    public var bodyLimit: Int
    /// Database connections the API's requests share (separate from the orchestrator's own).
    public var maximumConnections: Int
    /// How many `POST /v1/tasks` batches (group commits) run at once: two — one committing while the
    /// next gathers — and never more than half the pool, so other requests always find a connection.
    /// More would not commit faster: every submission sends a NOTIFY, and PostgreSQL serializes the
    /// commits of transactions that notified (one lock, held through the WAL flush), so extra
    /// batches only make each one smaller. Measured: pool 8 with four batches 1,656/s, with two
    /// 2,079/s over 16 connections (docs/benchmarks.md, "HTTP API").
    public var submissionBatches: Int { max(1, min(2, maximumConnections / 2)) }
    /// How long a token check is remembered.
    public var tokenCacheTime: Duration
    /// HTTPS with this certificate and key (`--tls-cert`, `--tls-key`); plain HTTP when nil.
    public var tls: TLSFiles?
    /// Serve `GET /metrics` (the process must have called `PrometheusExport.bootstrap()`).
    public var servesMetrics = true

    public init(host: String, port: Int, bodyLimit: Int = 1 << 20, maximumConnections: Int = 8,
                tokenCacheTime: Duration = .seconds(1)) {
        self.host = host
        self.port = port
        self.bodyLimit = bodyLimit
        self.maximumConnections = maximumConnections
        self.tokenCacheTime = tokenCacheTime
    }

    /// `HOST:PORT`, `:PORT` (every interface) or `[IPv6]:PORT`.
    public init(address: String, bodyLimit: Int = 1 << 20) throws(HTTPAddressError) {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
              (0...65535).contains(port) else {
            throw HTTPAddressError(address: address)
        }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.init(host: host.isEmpty ? "0.0.0.0" : host, port: port, bodyLimit: bodyLimit)
    }
}

public struct HTTPAddressError: Error, Sendable, CustomStringConvertible {
    public var address: String
    public var description: String { "'\(address)' is not an address to listen on: write HOST:PORT, e.g. 127.0.0.1:8080 or :8080." }
}

/// The HTTP API as a `Service`: a Hummingbird application serving the routes generated from
/// docs/openapi.yaml, on its own connection pool. Graceful shutdown (SIGTERM to the group)
/// stops accepting connections and lets requests in flight finish. It runs as a plain service of
/// the orchestrator's group (`run()`, not `runService()`), so the group alone handles signals.
public struct HTTPServer: Service {
    public let configuration: HTTPServerConfiguration
    public let conninfo: String
    public let logger: Logger

    public init(configuration: HTTPServerConfiguration, conninfo: String, logger: Logger = Logger(label: "orcastra.http")) {
        self.configuration = configuration
        self.conninfo = conninfo
        self.logger = logger
    }

    public func run() async throws {
        let pool = PostgresPool(conninfo: conninfo, maximumConnections: configuration.maximumConnections, metricsName: "http")
        do {
            try await application(pool: pool, tls: try configuration.tls?.configuration()).run()
        } catch {
            await pool.shutdown()
            throw error
        }
        await pool.shutdown()
    }

    func application(pool: PostgresPool, tls: TLSConfiguration? = nil) throws -> some ApplicationProtocol {
        let router = Router()
        if configuration.servesMetrics {
            router.add(middleware: MetricsEndpoint(pool: pool, queue: QueueMetrics(), logger: logger))
        }
        // With a tracer bootstrapped (OTEL_* variables, docs/tracing.md) each request is a server
        // span, a child of the caller's traceparent; a task submitted in it is stored under it.
        if !(InstrumentationSystem.tracer is NoOpTracer) {
            router.add(middleware: TracingMiddleware())
        }
        // The web dashboard (docs/dashboard.md) answers its own paths (`/`, `/login`, `/tasks`, …)
        // and passes every other request on to the API.
        let dashboard = Dashboard(pool: pool, secureCookies: tls != nil, logger: logger)
        router.add(middleware: dashboard.middleware())
        router.add(middleware: APIMiddleware(authenticator: TokenAuthenticator(pool: pool, cacheTime: configuration.tokenCacheTime),
                                             bodyLimit: configuration.bodyLimit, logger: logger,
                                             sessionScopes: { await dashboard.sessionScopes(cookieHeader: $0) }))
        let hub = TaskEventHub(conninfo: conninfo, logger: logger)
        let submissions = SubmissionBatcher(creator: TaskCreator(pool: pool),
                                            maximumInFlight: configuration.submissionBatches)
        try APIHandler(client: OrcastraClient(pool: pool), hub: hub,
                       templates: TemplateLookupCache(registry: TemplateRegistry(pool: pool)), submissions: submissions,
                       logger: logger)
            .registerHandlers(on: router, configuration: .init(dateTranscoder: RFC3339Dates(),
                                                               // `"shop/order@1.0.0"`, as the docs print it, not `shop\/order`.
                                                               jsonEncodingOptions: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]))
        let logger = self.logger
        let configuration = self.configuration
        return Application(
            router: router,
            server: try tls.map { try .tls(.http1(), tlsConfiguration: $0) } ?? .http1(),
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port),
                                                    serverName: "orcastra"),
            onServerRunning: { channel in
                logger.notice("HTTP API listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")",
                                                               "tls": "\(configuration.tls != nil)"])
            },
            logger: logger)
    }
}
