import OrcastraCommandLine

// `orcastra-worker`. The command itself lives in OrcastraCommandLine so that
// `orcastra worker` is the same program.
// flag > ORCASTRA_* > orcastra.yaml > default (docs/configuration.md).
let command = OrcastraLaunch.parse(WorkerCommand.self, scope: "worker")
do {
    try await command.options.runWorker()
} catch {
    OrcastraLaunch.end(WorkerCommand.self, withError: error)
}
