import Foundation
import OrcastraPostgres

/// Why migrating stopped; each names the file concerned.
public enum MigrationError: Error, Sendable, CustomStringConvertible {
    /// The migrations folder given does not exist.
    case folderMissing(String)
    /// The migrations folder given is a file.
    case notAFolder(String)
    /// The migrations folder given holds neither numbered nor repeatable `.sql` files.
    case folderEmpty(String)
    /// A folder that cannot be listed or a file that cannot be read (permissions, I/O).
    case unreadable(String)
    /// A file that is not UTF-8 text.
    case notUTF8(String)
    case badFileName(String)
    case duplicateVersion(String, String)
    case bundleMissing(searched: [String])
    /// An applied file whose text changed since it ran.
    case checksumMismatch(file: String, applied: String, current: String)
    /// The database has a migration this build does not know: it was migrated by a newer Orcastra.
    case unknownApplied(version: Int, file: String)
    /// The file failed and was rolled back as a whole. `line` (1-based) and `lineText` locate the
    /// error when the server gave a position for it. `rolledBackWith`: how many other changed
    /// repeatable files its transaction took back with it (they are applied as one set).
    case failed(file: String, line: Int?, lineText: String?, underlying: any Error, rolledBackWith: Int)

    public var description: String {
        switch self {
        case .folderMissing(let path):
            "\(path) does not exist: \(Self.whatTheFolderHolds)"
        case .notAFolder(let path):
            "\(path) is a file, not a folder: \(Self.whatTheFolderHolds)"
        case .folderEmpty(let path):
            "\(path) holds no .sql files: \(Self.whatTheFolderHolds)"
        case .unreadable(let path):
            "\(path) cannot be read: check its permissions."
        case .notUTF8(let path):
            "\(path) is not UTF-8 text: save it as UTF-8."
        case .badFileName(let name):
            "Migration file \(name) is misnamed: use a 4-digit number, an underscore and a name, like 0007_add_index.sql."
        case .duplicateVersion(let first, let second):
            "Migration files \(first) and \(second) share one number; renumber one of them."
        case .bundleMissing(let searched):
            "Orcastra's Migrations folder was not found (looked in \(searched.joined(separator: ", "))). Set ORCASTRA_MIGRATIONS_DIR to it."
        case .checksumMismatch(let file, let applied, let current):
            "Migration \(file) was edited after it was applied (checksum \(applied.prefix(12)) in the database, \(current.prefix(12)) on disk). Applied migrations are immutable: restore the file and put the change in a new migration."
        case .unknownApplied(let version, let file):
            "The database has migration \(version) (\(file)) that this Orcastra does not ship; it was migrated by a newer version. Upgrade Orcastra."
        case .failed(let file, let line, let lineText, let underlying, let others):
            Self.describeFailure(file: file, line: line, lineText: lineText, underlying: underlying, rolledBackWith: others)
        }
    }

    /// What a migrations folder is, for messages about a wrong one.
    static let whatTheFolderHolds =
        "give the folder that holds the migrations (NNNN_name.sql files, and repeatable ones in functions/), like Orcastra's Migrations/."

    /// Whether the folder itself is wrong (missing, a file, empty), rather than a file in it.
    public var concernsTheFolder: Bool {
        switch self {
        case .folderMissing, .notAFolder, .folderEmpty: true
        default: false
        }
    }

    private static func describeFailure(file: String, line: Int?, lineText: String?, underlying: any Error,
                                        rolledBackWith others: Int) -> String {
        let rolledBack = others > 0 ? "was rolled back with the other changed repeatable files" : "was rolled back"
        guard let line else { return "\(file) failed and \(rolledBack): \(reason(underlying))" }
        let shown = (lineText ?? "").trimmingCharacters(in: .whitespaces)
        let excerpt = shown.count > 120 ? String(shown.prefix(117)) + "..." : shown
        return "\(file) failed at line \(line) (\(excerpt)) and \(rolledBack): \(reason(underlying))"
    }

    /// The server's complaint without the statement, which here is the whole file.
    static func reason(_ error: any Error) -> String {
        guard case .server(let server) = error as? PostgresError else { return "\(error)" }
        var text = "PostgreSQL error \(server.sqlState): \(server.message)"
        if let detail = server.detail, !detail.isEmpty { text += " (\(detail))" }
        if let hint = server.hint, !hint.isEmpty { text += ". Hint: \(hint)" }
        return text
    }

    /// Locates a failure of `text`, sent whole, from the server's error position: a 1-based count
    /// of characters (code points) into the text.
    static func failed(file: String, text: String, underlying: any Error, rolledBackWith others: Int = 0) -> MigrationError {
        guard case .server(let server) = underlying as? PostgresError, let position = server.position, position > 0 else {
            return .failed(file: file, line: nil, lineText: nil, underlying: underlying, rolledBackWith: others)
        }
        let (line, lineText) = locate(position: position, in: text)
        return .failed(file: file, line: line, lineText: lineText, underlying: underlying, rolledBackWith: others)
    }

    static func locate(position: Int, in text: String) -> (line: Int, text: String) {
        var line = 1
        var lineStart = text.unicodeScalars.startIndex
        var index = text.unicodeScalars.startIndex
        var remaining = position - 1
        while remaining > 0, index < text.unicodeScalars.endIndex {
            if text.unicodeScalars[index] == "\n" {
                line += 1
                lineStart = text.unicodeScalars.index(after: index)
            }
            index = text.unicodeScalars.index(after: index)
            remaining -= 1
        }
        let lineEnd = text.unicodeScalars[lineStart...].firstIndex(where: { $0 == "\n" || $0 == "\r" }) ?? text.unicodeScalars.endIndex
        return (line, String(text.unicodeScalars[lineStart..<lineEnd]))
    }
}
