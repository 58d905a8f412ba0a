import Hummingbird
import Logging
import OrcastraOrchestrator
import OrcastraPostgres
import OrcastraPrometheus

/// `GET /metrics`: the process's Prometheus export, with the queue gauges refreshed first (at most
/// once a second, `QueueMetrics`). Outside docs/openapi.yaml — it is not JSON and not part of the
/// versioned API — and unauthenticated like `/healthz`: Prometheus scrapes it without a token, so
/// expose the port only where it should (docs/metrics.md). It runs before the API's middleware.
struct MetricsEndpoint<Context: RequestContext>: RouterMiddleware {
    let pool: PostgresPool
    let queue: QueueMetrics
    let logger: Logger

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path == "/metrics" else { return try await next(request, context) }
        guard request.method == .get || request.method == .head else {
            return Response(status: .methodNotAllowed, headers: [.allow: "GET, HEAD"])
        }
        do {
            try await queue.refreshIfStale(pool)
        } catch {
            // The counters are still worth serving; the queue gauges keep their last values.
            logger.warning("could not read the queue for /metrics", metadata: ["error": "\(error)"])
        }
        return MetricsServer.response(PrometheusExport.shared.exposition())
    }
}
