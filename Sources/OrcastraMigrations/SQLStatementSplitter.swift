/// Splits a SQL file into statements, so a failing one can be named with its line.
///
/// Understands what can hide a semicolon: quoted strings, quoted identifiers, dollar-quoted bodies
/// (`$$ … $$`, `$fn$ … $fn$`), line comments and nested block comments.
public enum SQLStatementSplitter {
    public struct Statement: Sendable, Equatable {
        public var text: String
        /// 1-based line where the statement starts.
        public var line: Int
    }

    public static func split(_ sql: String) -> [Statement] {
        let characters = Array(sql)
        var statements: [Statement] = []
        var current = ""
        var line = 1
        var startLine: Int?
        var index = 0

        func flush() {
            let trimmed = current.trimmingWhitespace()
            if !trimmed.isEmpty, let startLine { statements.append(Statement(text: trimmed, line: startLine)) }
            current = ""
            startLine = nil
        }
        // Comments before a statement are dropped, so messages show the statement itself.
        var keep = true
        func take(_ count: Int) {
            for _ in 0..<count where index < characters.count {
                let character = characters[index]
                if character == "\n" { line += 1 }
                if keep { current.append(character) }
                index += 1
            }
        }
        func peek(_ offset: Int) -> Character? {
            index + offset < characters.count ? characters[index + offset] : nil
        }

        while index < characters.count {
            let character = characters[index]
            let opensComment = (character == "-" && peek(1) == "-") || (character == "/" && peek(1) == "*")
            if startLine == nil, !character.isWhitespace, !opensComment { startLine = line }
            keep = startLine != nil
            switch character {
            case "-" where peek(1) == "-":
                while index < characters.count, characters[index] != "\n" { take(1) }
            case "/" where peek(1) == "*":
                var depth = 0
                repeat {
                    if characters[index] == "/" && peek(1) == "*" { depth += 1; take(2) }
                    else if characters[index] == "*" && peek(1) == "/" { depth -= 1; take(2) }
                    else { take(1) }
                } while depth > 0 && index < characters.count
            case "'", "\"":
                take(1)
                while index < characters.count {
                    if characters[index] == character {
                        if peek(1) == character { take(2); continue }
                        take(1)
                        break
                    }
                    take(1)
                }
            case "$":
                // A dollar-quote tag: $$ or $tag$ where tag is an identifier.
                var end = index + 1
                while end < characters.count, characters[end].isLetter || characters[end].isNumber || characters[end] == "_" { end += 1 }
                if end < characters.count, characters[end] == "$", !(end > index + 1 && characters[index + 1].isNumber) {
                    let tag = String(characters[index...end])
                    take(tag.count)
                    while index < characters.count {
                        if characters[index] == "$", String(characters[index..<min(index + tag.count, characters.count)]) == tag {
                            take(tag.count)
                            break
                        }
                        take(1)
                    }
                } else {
                    take(1)
                }
            case ";":
                take(1)
                flush()
            default:
                take(1)
            }
        }
        flush()
        return statements
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}
