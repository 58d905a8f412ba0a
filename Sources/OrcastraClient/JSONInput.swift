import Foundation
import OrcastraTemplates

/// Reads JSON typed by a person, and says where it is wrong.
///
/// `JSONValue(parsing:)` goes through `JSONDecoder`, which on Linux only reports "not valid JSON".
/// `JSONSerialization` knows the character offset of the problem; we turn it into a line and column
/// so a long context file can be fixed without guessing.
public enum JSONInput {
    /// - Parameter source: how to name the text in an error, e.g. "The context from --context".
    public static func parse(_ text: String, source: String) throws(ClientError) -> JSONValue {
        do {
            return try JSONValue(parsing: text)
        } catch {
            throw locate(text, source: source, fallback: error.message)
        }
    }

    static func locate(_ text: String, source: String, fallback: String) -> ClientError {
        let data = Data(text.utf8)
        var problem = fallback
        var offset: Int?
        if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            return .invalidJSON(source: source, problem: "it is empty", line: nil, column: nil)
        }
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            let message = (error as NSError).userInfo["NSDebugDescription"] as? String ?? "\(error)"
            problem = message.trimmingCharacters(in: CharacterSet(charactersIn: ". "))
            if let range = message.range(of: "character ") {
                offset = Int(message[range.upperBound...].prefix { $0.isNumber })
                problem = String(message[..<range.lowerBound]).trimmingCharacters(in: .whitespaces)
                if problem.hasSuffix(" around") { problem = String(problem.dropLast(7)) }
            } else if message.localizedCaseInsensitiveContains("end of file") {
                offset = data.count
                problem = "it ends too early (a closing bracket, brace or quote is missing)"
            }
        }
        guard let offset else { return .invalidJSON(source: source, problem: problem, line: nil, column: nil) }
        let (line, column) = position(ofByte: offset, in: data)
        return .invalidJSON(source: source, problem: problem.prefix(1).lowercased() + problem.dropFirst(), line: line, column: column)
    }

    /// 1-based line and column (in characters) of a 0-based UTF-8 offset.
    static func position(ofByte offset: Int, in data: Data) -> (Int, Int) {
        let prefix = data.prefix(offset)
        var line = 1
        var lineStart = prefix.startIndex
        for index in prefix.indices where prefix[index] == UInt8(ascii: "\n") {
            line += 1
            lineStart = index + 1
        }
        let column = String(decoding: prefix[lineStart...], as: UTF8.self).count + 1
        return (line, column)
    }
}
