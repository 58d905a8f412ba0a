import ArgumentParser
import Foundation

/// The HTTP API's options. Only `orcastra-orchestrator` serves the API (`orcastra orchestrator` does
/// not link the HTTP server and refuses these settings: `RefusedHTTPOptions`); they live here so
/// that every executable knows them as keys of orcastra.yaml.
public struct HTTPOptions: ParsableArguments {
    public init() {}

    @Option(help: ArgumentHelp(
        "Serve the HTTP API (docs/api.md) on HOST:PORT, e.g. 127.0.0.1:8080 (or ORCASTRA_HTTP_ADDRESS). Without it no port is opened.",
        valueName: "host:port"))
    public var httpAddress: String?

    @Option(help: "The largest request body the API accepts, in bytes; larger ones get 413. (default: 1048576, 1 MiB)")
    public var httpBodyLimit = 1 << 20

    @Option(help: ArgumentHelp(
        "Database connections the HTTP API's requests share (separate from the orchestrator's own); half of them at most run POST /v1/tasks batches. (default: 8)",
        valueName: "n"))
    public var httpPoolSize = 8

    @Option(help: ArgumentHelp("Serve HTTPS with this PEM certificate (the server's, then any intermediates); with --tls-key.", valueName: "file"))
    public var tlsCert: String?

    @Option(help: ArgumentHelp("The certificate's PEM private key (unencrypted); with --tls-cert.", valueName: "file"))
    public var tlsKey: String?

    public func validate() throws {
        guard httpBodyLimit > 0 else { throw ValidationError("--http-body-limit must be at least 1.") }
        guard (1...Self.maximumPoolSize).contains(httpPoolSize) else {
            throw ValidationError("--http-pool-size must be between 1 and \(Self.maximumPoolSize) (each is a PostgreSQL connection; see max_connections), got \(httpPoolSize).")
        }
        if (tlsCert == nil) != (tlsKey == nil) {
            throw ValidationError("--tls-cert and --tls-key go together: give the certificate and its private key.")
        }
        if tlsCert != nil, resolvedAddress == nil {
            throw ValidationError("--tls-cert and --tls-key need --http-address (they secure the HTTP API).")
        }
    }

    /// More would mostly wait on each other: PostgreSQL serves a few connections per core well.
    public static let maximumPoolSize = 500

    public var resolvedAddress: String? {
        httpAddress ?? ProcessInfo.processInfo.environment["ORCASTRA_HTTP_ADDRESS"].flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// The orchestrator with its HTTP API: the options of `orcastra-orchestrator`.
public struct OrchestratorServerOptions: ParsableArguments {
    public init() {}
    @OptionGroup public var orchestrator: OrchestratorOptions
    @OptionGroup public var http: HTTPOptions
}
