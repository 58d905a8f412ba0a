/// A syntax check, without a database, for the jsonpath subset a concurrency key uses:
/// `$` followed by member accessors `.name` or `."any text"` and array indexes `[0]`, starting
/// with `$.context` (the key is evaluated over `{"context": <the task's context>}`).
///
/// PostgreSQL evaluates the key (`jsonb_path_query_first`), so there is no second evaluator to
/// keep in step; this only refuses, with the position, what PostgreSQL would refuse or what
/// could select more than one value (`*`, `**`, filters, methods, `last`, ranges), so that
/// `template validate` catches it before registration.
public enum JSONPathSyntax {
    /// Where the problem starts (0-based, in characters) and what it is.
    public struct Problem: Sendable, Hashable {
        public var offset: Int
        public var message: String
    }

    /// Nil when `path` is in the subset.
    public static func problem(inKey path: String) -> Problem? {
        let characters = Array(path)
        var index = 0
        func isIdentifierStart(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c == "_") }
        func isIdentifier(_ c: Character) -> Bool { isIdentifierStart(c) || (c.isASCII && c.isNumber) }
        guard characters.first == "$" else {
            return Problem(offset: 0, message: "a jsonpath starts with '$' (the document {\"context\": …}); write it like $.context.customer_id")
        }
        index = 1
        var members: [String] = []
        while index < characters.count {
            let start = index
            switch characters[index] {
            case ".":
                index += 1
                guard index < characters.count else { return Problem(offset: start, message: "a name must follow '.'") }
                if characters[index] == "\"" {
                    index += 1
                    var name = ""
                    while index < characters.count, characters[index] != "\"" {
                        if characters[index] == "\\" { index += 1 }
                        if index < characters.count { name.append(characters[index]) }
                        index += 1
                    }
                    guard index < characters.count else { return Problem(offset: start + 1, message: "the quoted name is not closed with '\"'") }
                    index += 1
                    members.append(name)
                } else if isIdentifierStart(characters[index]) {
                    var name = ""
                    while index < characters.count, isIdentifier(characters[index]) {
                        name.append(characters[index])
                        index += 1
                    }
                    if index < characters.count, characters[index] == "(" {
                        return Problem(offset: start, message: "methods like .\(name)() are not allowed in a key; select the value itself")
                    }
                    members.append(name)
                } else if characters[index] == "*" {
                    return Problem(offset: index, message: "'*' selects many values; a key must name one, like .customer_id")
                } else {
                    return Problem(offset: index, message: "'\(characters[index])' cannot start a name; quote it, like .\"\(characters[index])…\"")
                }
            case "[":
                index += 1
                var digits = ""
                while index < characters.count, characters[index].isASCII, characters[index].isNumber {
                    digits.append(characters[index])
                    index += 1
                }
                guard !digits.isEmpty, index < characters.count, characters[index] == "]" else {
                    return Problem(offset: start, message: "only a whole-number index like [0] is allowed in brackets (no *, ranges, last or filters)")
                }
                index += 1
                members.append("[\(digits)]")
            case "?":
                return Problem(offset: start, message: "filters (?(...)) are not allowed in a key; a key selects one value")
            case " ", "\t":
                return Problem(offset: start, message: "unexpected space; a key is one path like $.context.customer_id")
            default:
                return Problem(offset: start, message: "unexpected '\(characters[start])'; continue with .name or [index]")
            }
        }
        guard members.first == "context" else {
            return Problem(offset: 1, message: "the key must select from the task's context; start it with $.context")
        }
        guard members.count > 1 else {
            return Problem(offset: 0, message: "$.context is the whole context; name the field that holds the key, like $.context.customer_id")
        }
        return nil
    }
}
