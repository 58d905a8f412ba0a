import Foundation

/// Everything that can go wrong talking to PostgreSQL, with the context a person needs to act on it.
public enum PostgresError: Error, Sendable, CustomStringConvertible {
    /// The server (or libpq) rejected a statement.
    case server(ServerError)
    /// No connection could be made; `address` is the connection target with any password removed.
    case connectionFailed(address: String, message: String)
    /// The connection broke while a statement was running, or was already closed.
    case connectionLost(message: String)
    /// A value could not be decoded into the requested Swift type.
    case decoding(column: String, type: PostgresDataType, value: String?, reason: String)
    /// The statement produced no rows where one was required.
    case noRows(statement: String)
    /// A parameter PostgreSQL cannot store, such as text with a NUL character; nothing was sent.
    case invalidParameter(position: Int, reason: String, statement: String)
    /// An identifier (`\(ident:)`) that cannot be quoted; nothing was sent.
    case invalidIdentifier(name: String, reason: String, statement: String)

    /// Whether the error says the database lacks Orcastra's schema, or has an older one: its schema,
    /// a table or a function is missing (3F000, 42P01, 42883). The way out is `orcastra migrate`.
    public var meansSchemaNotMigrated: Bool {
        ["3F000", "42P01", "42883"].contains(sqlState ?? "")
    }

    /// The SQLSTATE of a server error (`23505` for a unique violation), nil for client-side errors.
    public var sqlState: String? {
        if case .server(let error) = self { return error.sqlState }
        return nil
    }

    /// A cached plan no longer fits what it refers to (0A000 "cached plan must not change result
    /// type", after a function or view was replaced), or a prepared statement is gone (26000).
    var isStalePreparedStatement: Bool {
        guard case .server(let error) = self else { return false }
        return error.sqlState == "26000" || (error.sqlState == "0A000" && error.message.contains("cached plan"))
    }

    public var description: String {
        switch self {
        case .server(let error):
            return error.description
        case .connectionFailed(let address, let message):
            return "Could not connect to PostgreSQL at \(address): \(message). Check that the server runs and the address is right (--database-url, ORCASTRA_DATABASE_URL, DATABASE_URL or PG* variables)."
        case .connectionLost(let message):
            return "The connection to PostgreSQL was lost: \(message)."
        case .decoding(let column, let type, let value, let reason):
            let shown = value.map { "'\($0.prefix(80))'" } ?? "NULL"
            return "Could not decode column \"\(column)\" (\(type)) value \(shown): \(reason)."
        case .noRows(let statement):
            return "The query returned no rows: \(ServerError.abbreviate(statement))."
        case .invalidParameter(let position, let reason, let statement):
            return "Parameter $\(position) cannot be sent to PostgreSQL: \(reason) — in statement: \(ServerError.abbreviate(statement))"
        case .invalidIdentifier(let name, let reason, let statement):
            let shown = name.replacingOccurrences(of: "\0", with: "\\0")
            return "The name \"\(shown.prefix(80))\" cannot be used as a PostgreSQL identifier: \(reason) — in statement: \(ServerError.abbreviate(statement))"
        }
    }
}

/// An error reported by the server, with its fields as libpq exposes them.
public struct ServerError: Error, Sendable, CustomStringConvertible {
    public var sqlState: String
    public var severity: String
    public var message: String
    public var detail: String?
    public var hint: String?
    /// 1-based character position in the statement, when the server gives one.
    public var position: Int?
    public var constraint: String?
    public var statement: String

    public var description: String {
        var text = "PostgreSQL error \(sqlState): \(message)"
        if let detail, !detail.isEmpty { text += " (\(detail))" }
        if let hint, !hint.isEmpty { text += ". Hint: \(hint)" }
        text += " — in statement: \(Self.abbreviate(statement))"
        return text
    }

    /// One line of at most 160 characters, so errors stay readable in logs.
    static func abbreviate(_ statement: String) -> String {
        let oneLine = statement.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
            .joined(separator: " ")
        return oneLine.count > 160 ? String(oneLine.prefix(157)) + "..." : oneLine
    }
}
