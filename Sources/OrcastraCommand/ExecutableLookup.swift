#if canImport(Glibc)
import Glibc
#endif

/// Finds the program to run the way a shell would, but before spawning, so that a missing
/// executable becomes a clear `failedToStart` message instead of a bare `ENOENT`.
enum ExecutableLookup {
    /// Used when neither the step's environment nor the worker has a `PATH`.
    static let defaultSearchPath = "/usr/local/bin:/usr/bin:/bin"

    /// The path to pass to `posix_spawn`, or a sentence saying why there is none.
    ///
    /// A name containing `/` is used as is; the kernel reports any problem with it. Relative `PATH`
    /// entries are checked against `workingDirectory`, because the child resolves them after its `chdir`.
    static func resolve(
        _ name: String,
        searchPath: String?,
        workingDirectory: String?
    ) -> Result<String, LookupFailure> {
        if name.isEmpty { return .failure(LookupFailure(message: "The command is empty: argv has no executable.")) }
        if name.contains("/") { return .success(name) }
        let path = searchPath ?? defaultSearchPath
        for entry in path.split(separator: ":", omittingEmptySubsequences: false) {
            let directory = entry.isEmpty ? "." : String(entry)
            let candidate = directory + "/" + name
            let checked: String
            if candidate.hasPrefix("/") || workingDirectory == nil {
                checked = candidate
            } else {
                checked = workingDirectory! + "/" + candidate
            }
            if isExecutableFile(checked) { return .success(candidate) }
        }
        return .failure(LookupFailure(message: "\(name) was not found on PATH (\(path))."))
    }

    static func isExecutableFile(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return false }
        return access(path, X_OK) == 0
    }

    struct LookupFailure: Error {
        let message: String
    }
}
