import OrcastraCommandLine

// `orcastra-worker`. The command itself lives in OrcastraCommandLine so that
// `orcastra worker` is the same program.
do {
    let command = try WorkerCommand.parse()
    try await command.options.runWorker()
} catch {
    WorkerCommand.exit(withError: error)
}
