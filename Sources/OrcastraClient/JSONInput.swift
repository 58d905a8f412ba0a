import OrcastraTemplates

/// Reads JSON typed by a person, and says where it is wrong.
///
/// `JSONValue(parsing:)` is strict and knows the line and column of a problem; this names where
/// the text came from, and also refuses what PostgreSQL's jsonb cannot store (a NUL character),
/// so nothing is sent that the database would refuse half-way.
public enum JSONInput {
    /// - Parameter source: how to name the text in an error, e.g. "The context from --context".
    /// - Throws: `ClientError.invalidJSON` (with line and column) or `ClientError.unstorableJSON`.
    public static func parse(_ text: String, source: String) throws(ClientError) -> JSONValue {
        if text.utf8.allSatisfy({ [0x20, 0x0A, 0x0D, 0x09].contains($0) }) {
            throw .invalidJSON(source: source, problem: "it is empty", line: nil, column: nil)
        }
        let value: JSONValue
        do {
            value = try JSONValue(parsing: text)
        } catch {
            throw .invalidJSON(source: source, problem: error.problem, line: error.line, column: error.column)
        }
        if let reason = value.unstorableReason() {
            throw .unstorableJSON(source: source, reason: reason)
        }
        return value
    }
}
