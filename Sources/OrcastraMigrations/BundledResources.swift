import Foundation

/// Finds folders that ship with Orcastra (`Migrations`, `Templates`) wherever it runs from:
/// an environment variable, an installed copy in `share/orcastra/` beside the binary's folder
/// (as in the Docker image), or the source tree this build came from.
public enum BundledResources {
    public static func directory(named name: String, environmentVariable: String) -> (URL?, searched: [String]) {
        var candidates: [URL] = []
        if let configured = ProcessInfo.processInfo.environment[environmentVariable], !configured.isEmpty {
            candidates.append(URL(fileURLWithPath: configured))
        }
        // /proc/self/exe is the real binary even when it was found through PATH.
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        candidates.append(executable.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("share/orcastra/\(name)"))
        // Sources/OrcastraMigrations/BundledResources.swift → the package root.
        candidates.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(name))
        let found = candidates.first { candidate in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory) && isDirectory.boolValue
        }
        return (found, candidates.map(\.path))
    }
}
