import Foundation

/// Lists and reads the `.sql` files of a folder, failing with a `MigrationError` that names the
/// path as it was given (`relativePath`), never with Foundation's own error, whose text is a dump
/// of its internals.
enum SQLFiles {
    /// Whether `url` is an existing folder.
    static func isFolder(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// The names of the `*.sql` entries directly in `folder`, unsorted.
    static func names(in folder: URL) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory) else {
            throw MigrationError.folderMissing(folder.relativePath)
        }
        guard isDirectory.boolValue else { throw MigrationError.notAFolder(folder.relativePath) }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else {
            throw MigrationError.unreadable(folder.relativePath)
        }
        return names.filter { $0.hasSuffix(".sql") }
    }

    /// The text of the file `name` in `folder`.
    static func text(of name: String, in folder: URL) throws -> String {
        let url = folder.appendingPathComponent(name)
        guard let data = FileManager.default.contents(atPath: url.path) else { throw MigrationError.unreadable(url.relativePath) }
        guard let text = String(validating: data, as: UTF8.self) else { throw MigrationError.notUTF8(url.relativePath) }
        return text
    }
}
