import ArgumentParser
import Foundation
import OrcastraCommandLine
import OrcastraHTTP
import OrcastraPrometheus
import OrcastraStateMachines

/// `orcastra-orchestrator`: the orchestrator's chores (OrcastraCommandLine) plus, with
/// `--http-address`, the HTTP API in the same service group.
struct OrchestratorServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orcastra-orchestrator", abstract: "Run Orcastra's orchestrator (and, with --http-address, its HTTP API).",
        discussion: OrchestratorCommand.configuration.discussion, version: OrcastraVersion.current)
    @OptionGroup var server: OrchestratorServerOptions

    func validate() throws {
        if let address = server.http.resolvedAddress {
            do { _ = try HTTPServerConfiguration(address: address) } catch { throw ValidationError("\(error)") }
        }
        // Read and checked now: a wrong file stops the start with its name, not a handshake later.
        if let cert = server.http.tlsCert, let key = server.http.tlsKey {
            do { _ = try TLSFiles(certificatePath: cert, keyPath: key).configuration() } catch { throw ValidationError("\(error)") }
        }
    }

    func run() async throws {
        let address = server.http.resolvedAddress
        let bodyLimit = server.http.httpBodyLimit, poolSize = server.http.httpPoolSize
        let tls = server.http.tlsCert.flatMap { cert in server.http.tlsKey.map { TLSFiles(certificatePath: cert, keyPath: $0) } }
        // /metrics is served with the API: only then are metrics recorded at all. First, so that no
        // metric is made (and stays a no-op) before the backend is in place.
        if address != nil { PrometheusExport.bootstrap() }
        try await server.orchestrator.runOrchestrator { conninfo in
            guard let address else { return [] }
            var configuration = try HTTPServerConfiguration(address: address, bodyLimit: bodyLimit)
            configuration.tls = tls
            configuration.maximumConnections = poolSize
            return [HTTPServer(configuration: configuration, conninfo: conninfo)]
        }
    }
}

// flag > ORCASTRA_* > orcastra.yaml > default (docs/configuration.md).
let command = OrcastraLaunch.parse(OrchestratorServer.self, scope: "orchestrator")
do {
    try await command.run()
} catch {
    OrcastraLaunch.end(OrchestratorServer.self, withError: error)
}
