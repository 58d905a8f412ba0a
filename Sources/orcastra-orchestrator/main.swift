import OrcastraCommandLine

// `orcastra-orchestrator`. The command itself lives in OrcastraCommandLine so that
// `orcastra orchestrator` is the same program.
do {
    let command = try OrchestratorCommand.parse()
    try await command.options.runOrchestrator()
} catch {
    OrchestratorCommand.exit(withError: error)
}
