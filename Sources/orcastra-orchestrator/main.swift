import ArgumentParser
import Foundation
import OrcastraCommandLine
import OrcastraHTTP
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
    }

    func run() async throws {
        let address = server.http.resolvedAddress
        let bodyLimit = server.http.httpBodyLimit
        try await server.orchestrator.runOrchestrator { conninfo in
            guard let address else { return [] }
            return [HTTPServer(configuration: try HTTPServerConfiguration(address: address, bodyLimit: bodyLimit), conninfo: conninfo)]
        }
    }
}

// flag > ORCASTRA_* > orcastra.yaml > default (docs/configuration.md).
let command = OrcastraLaunch.parse(OrchestratorServer.self, scope: "orchestrator")
do {
    try await command.run()
} catch {
    OrchestratorServer.exit(withError: error)
}
