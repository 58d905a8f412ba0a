/// The rows a statement returned, copied out of libpq so no C memory outlives the call.
public struct QueryResult: Sendable, Sequence {
    public struct Column: Sendable, Hashable {
        public var name: String
        public var type: PostgresDataType
    }

    public let columns: [Column]
    public let rows: [PostgresRow]
    /// The command tag's count: rows inserted, updated or deleted (0 when it has none).
    public let affectedRows: Int
    public let commandTag: String

    public func makeIterator() -> IndexingIterator<[PostgresRow]> { rows.makeIterator() }
    public var count: Int { rows.count }
    public var isEmpty: Bool { rows.isEmpty }
    public var first: PostgresRow? { rows.first }
}

/// One row: values in text form (nil is NULL), decoded on demand into the type asked for.
public struct PostgresRow: Sendable {
    let layout: ColumnLayout
    let values: [String?]

    public var columns: [QueryResult.Column] { layout.columns }

    /// Decodes the named column.
    public func decode<Value: PostgresDecodable>(_ column: String, as: Value.Type = Value.self) throws -> Value {
        guard let index = layout.index[column] else {
            throw PostgresError.decoding(column: column, type: .unspecified, value: nil,
                                         reason: "no such column; the row has \(layout.columns.map(\.name).joined(separator: ", "))")
        }
        return try decode(at: index, as: Value.self)
    }

    /// Decodes the column at a 0-based position.
    public func decode<Value: PostgresDecodable>(at index: Int, as: Value.Type = Value.self) throws -> Value {
        let column = layout.columns[index]
        do {
            guard let text = values[index] else { return try Value.postgresNull() }
            return try Value(postgresText: text, type: column.type)
        } catch let failure as PostgresDecodingFailure {
            throw PostgresError.decoding(column: column.name, type: column.type, value: values[index], reason: failure.reason)
        }
    }

    /// The raw text of a column, nil for NULL.
    public subscript(column: String) -> String? {
        guard let index = layout.index[column] else { return nil }
        return values[index]
    }
}

/// Column names and types, shared by every row of one result.
final class ColumnLayout: Sendable {
    let columns: [QueryResult.Column]
    let index: [String: Int]

    init(columns: [QueryResult.Column]) {
        self.columns = columns
        var index: [String: Int] = [:]
        for (position, column) in columns.enumerated() where index[column.name] == nil {
            index[column.name] = position
        }
        self.index = index
    }
}
