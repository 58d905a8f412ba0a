/// An offline syntax check of the PostgreSQL `jsonpath` expressions a template carries (`when:`,
/// `for_each:` and a task concurrency key), so `orcastra template validate` needs no database.
/// Written by hand: no package in the mirror parses PostgreSQL's dialect of SQL/JSON path.
///
/// What ``check(_:)`` accepts is PostgreSQL's grammar (docs: "The SQL/JSON Path Language"): an
/// optional `lax`/`strict` mode; `$`, `@`, `$name` variables, `last`; numbers, double-quoted
/// strings, `true`/`false`/`null`; accessors `.key`, `."key"`, `.*`, `.**`, `.**{m to n}`, `[*]`,
/// `[i, j to k]`, item methods `.name(…)` and filters `? (…)`; arithmetic `+ - * / %`; comparisons
/// `== != <> < <= > >=`; `&&`, `||`, `!`; `like_regex "…" [flag "…"]`, `starts with`,
/// `exists (…)` and `(…) is unknown`. PostgreSQL stays the judge at run time: an expression this
/// accepts but PostgreSQL refuses fails at registration (the definition's `when` is cast to
/// `jsonpath` when a task is made), and docs/templates.md says which checks run where.
///
/// ``problem(inKey:)`` checks the subset a concurrency key uses, with the same tokenizer: `$`
/// followed by member accessors `.name` or `."any text"` and whole-number indexes `[0]`, starting
/// with `$.context`. PostgreSQL evaluates the key (`jsonb_path_query_first`); this refuses, with the
/// position, what could select more than one value (`*`, `**`, filters, methods, `last`, ranges).
public struct JSONPathSyntax: Sendable {
    /// A syntax error: the 0-based offset in the expression (in characters) and what is wrong.
    public struct Problem: Error, Sendable, Equatable {
        public var offset: Int
        public var message: String
    }

    /// A member path starting at `$`: the keys read before any wildcard, filter or subscript, with
    /// the offset of the first one. `$.parents.charge.total` gives ["parents", "charge", "total"].
    public struct Reference: Sendable, Equatable {
        public var keys: [String]
        public var offset: Int
    }

    public private(set) var references: [Reference] = []

    enum Token: Equatable {
        case dollar, at, variable(String), identifier(String), string(String), number
        case punct(String)
        case end
    }

    private var tokens: [(token: Token, offset: Int)] = []
    private var index = 0

    /// Checks `text`; the references it makes from `$` are in ``references``.
    public static func check(_ text: String) -> Result<JSONPathSyntax, Problem> {
        var parser = JSONPathSyntax()
        do {
            parser.tokens = try tokenize(Array(text))
            try parser.parseTop()
            return .success(parser)
        } catch let problem as Problem {
            return .failure(problem)
        } catch {
            return .failure(Problem(offset: 0, message: "\(error)"))
        }
    }

    // MARK: Tokens

    static func tokenize(_ chars: [Character]) throws -> [(token: Token, offset: Int)] {
        var result: [(token: Token, offset: Int)] = []
        var i = 0
        func isIdentifierStart(_ c: Character) -> Bool { c.isLetter || c == "_" }
        func isIdentifierPart(_ c: Character) -> Bool { c.isLetter || c.isNumber || c == "_" }
        let twoCharacter: Set<String> = ["==", "!=", "<>", "<=", ">=", "&&", "||", "**"]
        while i < chars.count {
            let c = chars[i]
            if c.isWhitespace { i += 1; continue }
            let start = i
            if c == "$" {
                i += 1
                if i < chars.count, isIdentifierStart(chars[i]) {
                    while i < chars.count, isIdentifierPart(chars[i]) { i += 1 }
                    result.append((.variable(String(chars[(start + 1)..<i])), start))
                } else if i < chars.count, chars[i] == "\"" {
                    let name = try readString(chars, &i)
                    result.append((.variable(name), start))
                } else {
                    result.append((.dollar, start))
                }
            } else if c == "@" {
                i += 1
                result.append((.at, start))
            } else if c == "\"" {
                result.append((.string(try readString(chars, &i)), start))
            } else if c.isNumber || (c == "." && i + 1 < chars.count && chars[i + 1].isNumber && !(result.last.map { isValueEnd($0.token) } ?? false)) {
                while i < chars.count, chars[i].isNumber { i += 1 }
                if i < chars.count, chars[i] == ".", i + 1 < chars.count, chars[i + 1].isNumber {
                    i += 1
                    while i < chars.count, chars[i].isNumber { i += 1 }
                }
                if i < chars.count, chars[i] == "e" || chars[i] == "E" {
                    i += 1
                    if i < chars.count, chars[i] == "+" || chars[i] == "-" { i += 1 }
                    guard i < chars.count, chars[i].isNumber else {
                        throw Problem(offset: i, message: "a number's exponent needs digits after 'e'")
                    }
                    while i < chars.count, chars[i].isNumber { i += 1 }
                }
                if i < chars.count, isIdentifierStart(chars[i]) {
                    throw Problem(offset: i, message: "unexpected '\(chars[i])' right after a number")
                }
                result.append((.number, start))
            } else if isIdentifierStart(c) {
                while i < chars.count, isIdentifierPart(chars[i]) { i += 1 }
                result.append((.identifier(String(chars[start..<i])), start))
            } else {
                if i + 1 < chars.count, twoCharacter.contains(String([c, chars[i + 1]])) {
                    result.append((.punct(String([c, chars[i + 1]])), start))
                    i += 2
                } else if "+-*/%()[]{}.,<>!?".contains(c) {
                    result.append((.punct(String(c)), start))
                    i += 1
                } else if c == "=" {
                    throw Problem(offset: i, message: "'=' is not an operator in jsonpath; compare with '=='")
                } else if c == "'" {
                    throw Problem(offset: i, message: "strings in jsonpath use double quotes, not single quotes")
                } else {
                    throw Problem(offset: i, message: "unexpected character '\(c)'")
                }
            }
        }
        result.append((.end, chars.count))
        return result
    }

    private static func isValueEnd(_ token: Token) -> Bool {
        switch token {
        case .dollar, .at, .variable, .identifier, .string, .number: return true
        case .punct(let p): return p == ")" || p == "]" || p == "*"
        case .end: return false
        }
    }

    static func readString(_ chars: [Character], _ i: inout Int) throws -> String {
        let start = i
        i += 1
        var text = ""
        while i < chars.count {
            let c = chars[i]
            if c == "\"" { i += 1; return text }
            if c == "\\" {
                i += 1
                guard i < chars.count else { break }
                text.append(chars[i])
            } else {
                text.append(c)
            }
            i += 1
        }
        throw Problem(offset: start, message: "a string is not closed; add the closing double quote")
    }

    // MARK: Grammar

    private var current: Token { tokens[index].token }
    private var offset: Int { tokens[index].offset }

    private mutating func advance() { if index < tokens.count - 1 { index += 1 } }

    private func describe(_ token: Token) -> String {
        switch token {
        case .dollar: return "'$'"
        case .at: return "'@'"
        case .variable(let name): return "'$\(name)'"
        case .identifier(let name): return "'\(name)'"
        case .string: return "a string"
        case .number: return "a number"
        case .punct(let p): return "'\(p)'"
        case .end: return "the end of the expression"
        }
    }

    private mutating func expect(_ p: String, _ context: String) throws {
        guard current == .punct(p) else {
            throw Problem(offset: offset, message: "expected '\(p)' \(context), found \(describe(current))")
        }
        advance()
    }

    private func isKeyword(_ word: String) -> Bool { current == .identifier(word) }

    mutating func parseTop() throws {
        if isKeyword("lax") || isKeyword("strict") {
            if case .identifier = tokens[index + 1].token { advance() } else if tokens[index + 1].token == .dollar { advance() }
        }
        if current == .end { throw Problem(offset: offset, message: "the expression is empty; write a path such as $.context.flag == true") }
        try parseOr()
        guard current == .end else {
            throw Problem(offset: offset, message: "found \(describe(current)) after a complete expression; join predicates with && or ||")
        }
    }

    private mutating func parseOr() throws {
        try parseAnd()
        while current == .punct("||") { advance(); try parseAnd() }
    }

    private mutating func parseAnd() throws {
        try parseNot()
        while current == .punct("&&") { advance(); try parseNot() }
    }

    private mutating func parseNot() throws {
        if current == .punct("!") {
            advance()
            try expect("(", "after '!' (negate a parenthesized predicate: !(…))")
            try parseOr()
            try expect(")", "to close '!('")
            return
        }
        try parseComparison()
    }

    private mutating func parseComparison() throws {
        if isKeyword("exists") {
            advance()
            try expect("(", "after exists")
            try parseOr()
            try expect(")", "to close exists (…)")
            return
        }
        try parseAdditive()
        let comparisons: Set<String> = ["==", "!=", "<>", "<", "<=", ">", ">="]
        if case .punct(let p) = current, comparisons.contains(p) {
            advance()
            try parseAdditive()
        } else if isKeyword("like_regex") {
            advance()
            guard case .string = current else {
                throw Problem(offset: offset, message: "like_regex needs a double-quoted pattern, found \(describe(current))")
            }
            advance()
            if isKeyword("flag") {
                advance()
                guard case .string = current else {
                    throw Problem(offset: offset, message: "flag needs a double-quoted string such as \"i\", found \(describe(current))")
                }
                advance()
            }
        } else if isKeyword("starts") {
            advance()
            guard isKeyword("with") else { throw Problem(offset: offset, message: "expected 'with' after 'starts'") }
            advance()
            try parseAdditive()
        } else if isKeyword("is") {
            advance()
            guard isKeyword("unknown") else { throw Problem(offset: offset, message: "expected 'unknown' after 'is'") }
            advance()
        }
    }

    private mutating func parseAdditive() throws {
        try parseMultiplicative()
        while current == .punct("+") || current == .punct("-") { advance(); try parseMultiplicative() }
    }

    private mutating func parseMultiplicative() throws {
        try parseUnary()
        while current == .punct("*") || current == .punct("/") || current == .punct("%") { advance(); try parseUnary() }
    }

    private mutating func parseUnary() throws {
        if current == .punct("+") || current == .punct("-") { advance(); try parseUnary(); return }
        try parseAccessorExpression()
    }

    private mutating func parseAccessorExpression() throws {
        var keys: [String]? = nil
        var keysOffset = offset
        var collecting = true
        switch current {
        case .dollar:
            keys = []
            advance()
        case .at, .variable, .number, .string:
            advance()
        case .identifier(let word) where ["true", "false", "null", "last"].contains(word):
            advance()
        case .punct("("):
            advance()
            try parseOr()
            try expect(")", "to close '('")
        case .identifier(let word):
            throw Problem(offset: offset, message: "unexpected word '\(word)'; a path starts with $ (the step's input) or @ (the current item in a filter)")
        default:
            throw Problem(offset: offset, message: "expected a path, a literal or '(', found \(describe(current))")
        }
        while true {
            if current == .punct(".") {
                advance()
                switch current {
                case .identifier(let key):
                    let keyOffset = offset
                    advance()
                    if current == .punct("(") {
                        // An item method: .size(), .datetime("…"), …
                        advance()
                        while current != .punct(")") {
                            guard current != .end else { throw Problem(offset: offset, message: "expected ')' to close .\(key)(") }
                            advance()
                        }
                        advance()
                        collecting = false
                    } else if collecting, keys != nil {
                        if keys!.isEmpty { keysOffset = keyOffset }
                        keys!.append(key)
                    }
                case .string(let key):
                    if collecting, keys != nil {
                        if keys!.isEmpty { keysOffset = offset }
                        keys!.append(key)
                    }
                    advance()
                case .punct("*"):
                    advance()
                    collecting = false
                case .punct("**"):
                    advance()
                    collecting = false
                    if current == .punct("{") {
                        advance()
                        while current != .punct("}") {
                            guard current != .end else { throw Problem(offset: offset, message: "expected '}' to close .**{") }
                            advance()
                        }
                        advance()
                    }
                default:
                    throw Problem(offset: offset, message: "expected a key after '.', found \(describe(current)); quote keys that are not plain words: .\"my key\"")
                }
            } else if current == .punct("[") {
                advance()
                collecting = false
                if current == .punct("*") {
                    advance()
                } else {
                    repeat {
                        if current == .punct(",") { advance() }
                        try parseAdditive()
                        if isKeyword("to") { advance(); try parseAdditive() }
                    } while current == .punct(",")
                }
                try expect("]", "to close '['")
            } else if current == .punct("?") {
                advance()
                collecting = false
                try expect("(", "after '?' (a filter is written ? (@ > 1))")
                try parseOr()
                try expect(")", "to close the filter '? ('")
            } else {
                break
            }
        }
        if let keys {
            references.append(Reference(keys: keys, offset: keysOffset))
        }
    }
}

// MARK: Concurrency keys

extension JSONPathSyntax {
    /// Nil when `path` is in the concurrency key subset (see the type's documentation); else where
    /// the problem starts (0-based, in characters) and what it is.
    public static func problem(inKey path: String) -> Problem? {
        let characters = Array(path)
        // A key is one path: no space outside a quoted name; a quoted name must be closed.
        var quoteStart: Int?
        var position = 0
        while position < characters.count {
            let c = characters[position]
            if quoteStart != nil {
                if c == "\\" { position += 1 } else if c == "\"" { quoteStart = nil }
            } else if c == "\"" {
                quoteStart = position
            } else if c.isWhitespace {
                return Problem(offset: position, message: "unexpected space; a key is one path like $.context.customer_id")
            }
            position += 1
        }
        if let quoteStart {
            return Problem(offset: quoteStart, message: "the quoted name is not closed with '\"'")
        }
        let tokens: [(token: Token, offset: Int)]
        do {
            tokens = try tokenize(characters)
        } catch let problem as Problem {
            return problem
        } catch {
            return Problem(offset: 0, message: "\(error)")
        }
        guard tokens.first?.token == .dollar else {
            return Problem(offset: 0, message: "a jsonpath starts with '$' (the document {\"context\": …}); write it like $.context.customer_id")
        }
        func character(at offset: Int) -> String { offset < characters.count ? String(characters[offset]) : "" }
        var index = 1
        var members: [String] = []
        while tokens[index].token != .end {
            let start = tokens[index].offset
            switch tokens[index].token {
            case .punct("."):
                index += 1
                switch tokens[index].token {
                case .identifier(let name):
                    if tokens[index + 1].token == .punct("(") {
                        return Problem(offset: start, message: "methods like .\(name)() are not allowed in a key; select the value itself")
                    }
                    members.append(name)
                case .string(let name):
                    members.append(name)
                case .punct("*"), .punct("**"):
                    return Problem(offset: tokens[index].offset, message: "'*' selects many values; a key must name one, like .customer_id")
                case .end:
                    return Problem(offset: start, message: "a name must follow '.'")
                default:
                    let offset = tokens[index].offset
                    return Problem(offset: offset, message: "'\(character(at: offset))' cannot start a name; quote it, like .\"\(character(at: offset))…\"")
                }
                index += 1
            case .punct("["):
                // tokens ends with .end: a '[' with fewer than two tokens after it is refused first.
                guard index + 2 < tokens.count else {
                    return Problem(offset: start, message: "only a whole-number index like [0] is allowed in brackets (no *, ranges, last or filters)")
                }
                let digitsEnd = tokens[index + 2].offset
                let digits = tokens[index + 1].offset < digitsEnd ? String(characters[tokens[index + 1].offset..<digitsEnd]) : ""
                guard tokens[index + 1].token == .number, tokens[index + 2].token == .punct("]"),
                      !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                    return Problem(offset: start, message: "only a whole-number index like [0] is allowed in brackets (no *, ranges, last or filters)")
                }
                members.append("[\(digits)]")
                index += 3
            case .punct("?"):
                return Problem(offset: start, message: "filters (?(...)) are not allowed in a key; a key selects one value")
            default:
                return Problem(offset: start, message: "unexpected '\(character(at: start))'; continue with .name or [index]")
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
