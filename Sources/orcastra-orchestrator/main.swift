import ArgumentParser
import Foundation
import OrcastraCommandLine
import OrcastraHTTP
import OrcastraPrometheus
import OrcastraStateMachines

/// The HTTP API's options: only `orcastra-orchestrator` serves it (`orcastra orchestrator` does not
/// link the HTTP server).
struct HTTPOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Serve the HTTP API (docs/api.md) on HOST:PORT, e.g. 127.0.0.1:8080 (or ORCASTRA_HTTP_ADDRESS). Without it no port is opened.",
        valueName: "host:port"))
    var httpAddress: String?

    @Option(help: "The largest request body the API accepts, in bytes; larger ones get 413. (default: 1048576, 1 MiB)")
    var httpBodyLimit = 1 << 20

    func validate() throws {
        guard httpBodyLimit > 0 else { throw ValidationError("--http-body-limit must be at least 1.") }
        if let address = resolvedAddress {
            do { _ = try HTTPServerConfiguration(address: address) } catch { throw ValidationError("\(error)") }
        }
    }

    var resolvedAddress: String? {
        httpAddress ?? ProcessInfo.processInfo.environment["ORCASTRA_HTTP_ADDRESS"].flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// `orcastra-orchestrator`: the orchestrator's chores (OrcastraCommandLine) plus, with
/// `--http-address`, the HTTP API in the same service group.
struct OrchestratorServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orcastra-orchestrator", abstract: "Run Orcastra's orchestrator (and, with --http-address, its HTTP API).",
        discussion: OrchestratorCommand.configuration.discussion, version: OrcastraVersion.current)
    @OptionGroup var options: OrchestratorOptions
    @OptionGroup var http: HTTPOptions

    func run() async throws {
        let address = http.resolvedAddress
        let bodyLimit = http.httpBodyLimit
        // /metrics is served with the API: only then are metrics recorded at all. First, so that no
        // metric is made (and stays a no-op) before the backend is in place.
        if address != nil { PrometheusExport.bootstrap() }
        try await options.runOrchestrator { conninfo in
            guard let address else { return [] }
            return [HTTPServer(configuration: try HTTPServerConfiguration(address: address, bodyLimit: bodyLimit), conninfo: conninfo)]
        }
    }
}

do {
    let command = try OrchestratorServer.parse()
    try await command.run()
} catch {
    OrchestratorServer.exit(withError: error)
}
