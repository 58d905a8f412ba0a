/// A strict RFC 8259 JSON parser over UTF-8 bytes, written by hand: no package we can use keeps
/// number text exactly and refuses what Foundation tolerates (trailing commas, deep nesting).
///
/// Iterative (an explicit stack of open arrays and objects), so deep input cannot overflow the
/// thread's stack; nesting is bounded by `maximumDepth` anyway. Positions are computed only when
/// an error is thrown.
struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    let maximumDepth: Int
    var index = 0

    init(bytes: UnsafeBufferPointer<UInt8>, maximumDepth: Int) {
        self.bytes = bytes
        self.maximumDepth = maximumDepth
    }

    private enum Container { case array, object }

    mutating func parse() throws(JSONValueParseError) -> JSONValue {
        skipWhitespace()
        if index == bytes.count { throw failure("it is empty", at: index) }
        // The open containers, innermost last. Elements are appended in place (through a
        // subscript), never to a copy, so building a long array stays linear.
        var open: [Container] = []
        var arrays: [[JSONValue]] = []
        var objects: [[String: JSONValue]] = []
        var keys: [String] = []
        while true {
            // Read one value, or open a container and go on to its first element.
            skipWhitespace()
            guard index < bytes.count else { throw endTooEarly("expected a JSON value") }
            var value: JSONValue
            switch bytes[index] {
            case UInt8(ascii: "{"):
                if open.count >= maximumDepth { throw tooDeep() }
                index += 1
                skipWhitespace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    value = .object([:])
                } else {
                    keys.append(try key())
                    open.append(.object)
                    objects.append([:])
                    continue
                }
            case UInt8(ascii: "["):
                if open.count >= maximumDepth { throw tooDeep() }
                index += 1
                skipWhitespace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    value = .array([])
                } else {
                    open.append(.array)
                    arrays.append([])
                    continue
                }
            case UInt8(ascii: "\""): value = .string(try string())
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): value = .number(try number())
            case UInt8(ascii: "t"): try literal("true"); value = .bool(true)
            case UInt8(ascii: "f"): try literal("false"); value = .bool(false)
            case UInt8(ascii: "n"): try literal("null"); value = .null
            default: throw unexpected("expected a JSON value")
            }
            // Hand the value to the open containers, closing each that ends here.
            closing: while true {
                guard let container = open.last else {
                    skipWhitespace()
                    if index < bytes.count {
                        if bytes[index] == UInt8(ascii: "/") { throw failure("comments are not allowed in JSON", at: index) }
                        throw failure("unexpected \(describeFound(at: index)) after the JSON value", at: index)
                    }
                    return value
                }
                skipWhitespace()
                switch container {
                case .array:
                    arrays[arrays.count - 1].append(value)
                    guard index < bytes.count else { throw endTooEarly("expected ',' or ']'") }
                    if bytes[index] == UInt8(ascii: "]") {
                        index += 1
                        open.removeLast()
                        value = .array(arrays.removeLast())
                        continue closing
                    }
                    guard bytes[index] == UInt8(ascii: ",") else { throw unexpected("expected ',' or ']' after an array element") }
                    try comma(closing: UInt8(ascii: "]"))
                case .object:
                    // The last of repeated keys wins, as in PostgreSQL's jsonb.
                    objects[objects.count - 1][keys.removeLast()] = value
                    guard index < bytes.count else { throw endTooEarly("expected ',' or '}'") }
                    if bytes[index] == UInt8(ascii: "}") {
                        index += 1
                        open.removeLast()
                        value = .object(objects.removeLast())
                        continue closing
                    }
                    guard bytes[index] == UInt8(ascii: ",") else { throw unexpected("expected ',' or '}' after an object member") }
                    try comma(closing: UInt8(ascii: "}"))
                    keys.append(try key())
                }
                break closing
            }
        }
    }

    /// Steps over a ',' and refuses a ']' or '}' right after it.
    private mutating func comma(closing: UInt8) throws(JSONValueParseError) {
        let position = index
        index += 1
        skipWhitespace()
        if index < bytes.count, bytes[index] == closing {
            throw failure("trailing comma before '\(Character(Unicode.Scalar(closing)))'", at: position)
        }
    }

    /// An object's key and the ':' after it.
    private mutating func key() throws(JSONValueParseError) -> String {
        skipWhitespace()
        guard index < bytes.count else { throw endTooEarly("expected a key in double quotes") }
        guard bytes[index] == UInt8(ascii: "\"") else {
            throw unexpected("object keys must be strings in double quotes")
        }
        let name = try string()
        skipWhitespace()
        guard index < bytes.count else { throw endTooEarly("expected ':' after the key") }
        guard bytes[index] == UInt8(ascii: ":") else { throw unexpected("expected ':' after the key") }
        index += 1
        return name
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONValueParseError) {
        let count = word.utf8CodeUnitCount
        let matches = index + count <= bytes.count
            && (0..<count).allSatisfy { bytes[index + $0] == word.utf8Start[$0] }
        guard matches else { throw failure("", at: index, literal: word) }
        index += count
    }

    // MARK: Strings

    mutating func string() throws(JSONValueParseError) -> String {
        let start = index
        index += 1
        // Fast path: no escapes, so the text is a slice of the input.
        let runStart = index
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[runStart..<index]), as: UTF8.self)
                index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw controlCharacter(byte) }
            if byte < 0x80 { index += 1 } else { try skipUTF8Sequence() }
        }
        guard index < bytes.count else { throw failure("the string is not closed (a closing '\"' is missing)", at: start) }
        // Slow path: copy, decoding escapes.
        var buffer = Array(UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: buffer, as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\") {
                try escape(into: &buffer)
            } else if byte < 0x20 {
                throw controlCharacter(byte)
            } else if byte < 0x80 {
                buffer.append(byte)
                index += 1
            } else {
                let sequenceStart = index
                try skipUTF8Sequence()
                buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[sequenceStart..<index]))
            }
        }
        throw failure("the string is not closed (a closing '\"' is missing)", at: start)
    }

    private mutating func escape(into buffer: inout [UInt8]) throws(JSONValueParseError) {
        let start = index
        guard index + 1 < bytes.count else { throw failure("the string is not closed (a closing '\"' is missing)", at: start) }
        let letter = bytes[index + 1]
        index += 2
        switch letter {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): buffer.append(letter)
        case UInt8(ascii: "b"): buffer.append(0x08)
        case UInt8(ascii: "f"): buffer.append(0x0C)
        case UInt8(ascii: "n"): buffer.append(0x0A)
        case UInt8(ascii: "r"): buffer.append(0x0D)
        case UInt8(ascii: "t"): buffer.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try hex4(escapeAt: start)
            if (0xDC00...0xDFFF).contains(scalar) {
                throw failure("lone surrogate \\u\(hexText(scalar)) (a low surrogate without a high one before it)", at: start)
            }
            if (0xD800...0xDBFF).contains(scalar) {
                guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                    throw failure("lone surrogate \\u\(hexText(scalar)) (a high surrogate must be followed by a \\u escape of a low one)", at: start)
                }
                let lowStart = index
                index += 2
                let low = try hex4(escapeAt: lowStart)
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw failure("lone surrogate \\u\(hexText(scalar)) (followed by \\u\(hexText(low)), not a low surrogate)", at: start)
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            }
            // Surrogates were combined above, so this is a valid scalar.
            Unicode.UTF8.encode(Unicode.Scalar(scalar)!) { buffer.append($0) }
        default:
            throw failure("invalid escape '\\\(describe(letter))' in a string; JSON knows \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX", at: start)
        }
    }

    private mutating func hex4(escapeAt start: Int) throws(JSONValueParseError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard index < bytes.count else { throw failure("a \\u escape needs four hexadecimal digits", at: start) }
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw failure("a \\u escape needs four hexadecimal digits", at: start)
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    private func hexText(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// Steps over one well-formed UTF-8 sequence of two to four bytes, or throws at its first byte.
    private mutating func skipUTF8Sequence() throws(JSONValueParseError) {
        guard let length = utf8SequenceLength(at: index) else { throw invalidUTF8(at: index) }
        index += length
    }

    /// The length of the well-formed multi-byte UTF-8 sequence at `offset` (no overlong forms,
    /// no surrogates, nothing above U+10FFFF), or nil.
    private func utf8SequenceLength(at offset: Int) -> Int? {
        let length: Int
        var low: UInt8 = 0x80, high: UInt8 = 0xBF
        switch bytes[offset] {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F
        default: return nil
        }
        guard offset + length <= bytes.count, bytes[offset + 1] >= low, bytes[offset + 1] <= high else { return nil }
        for next in offset + 2 ..< offset + length where bytes[next] & 0xC0 != 0x80 { return nil }
        return length
    }

    // MARK: Numbers

    /// One number per the RFC's grammar, within the range of a Double.
    mutating func number() throws(JSONValueParseError) -> JSONNumber {
        let start = index
        var hasExponent = false
        if bytes[index] == UInt8(ascii: "-") {
            index += 1
            guard index < bytes.count else { throw endTooEarly("expected a digit after '-'") }
            if bytes[index] == UInt8(ascii: "I") { throw failure("Infinity is not a JSON number", at: start) }
        }
        let integerStart = index
        guard index < bytes.count, isDigit(bytes[index]) else {
            throw unexpected("expected a digit after '-'")
        }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, isDigit(bytes[index]) {
                throw failure("leading zeros are not allowed in numbers", at: start)
            }
        } else {
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        let integerDigits = index - integerStart
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else {
                if index == bytes.count { throw endTooEarly("expected a digit after '.'") }
                throw unexpected("expected a digit after '.'")
            }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            hasExponent = true
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else {
                if index == bytes.count { throw endTooEarly("expected a digit in the exponent") }
                throw unexpected("expected a digit in the exponent")
            }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        // Other readers (JavaScript, Python, Foundation) turn these into infinity.
        if hasExponent || integerDigits > 308, !(Double(text)?.isFinite ?? false) {
            throw failure("the number \(text.count > 40 ? text.prefix(40) + "…" : text) is too large (beyond ±1.8e308, the range of a Double)", at: start)
        }
        return JSONNumber(validated: text)
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte &- UInt8(ascii: "0") < 10
    }

    // MARK: Errors

    private func failure(_ problem: String, at offset: Int, literal: StaticString? = nil) -> JSONValueParseError {
        var problem = problem
        if let literal {
            // A misspelt true/false/null: name what was found.
            var end = offset
            while end < bytes.count, end - offset < 12, (0x61...0x7A).contains(bytes[end]) || (0x41...0x5A).contains(bytes[end]) { end += 1 }
            let found = String(decoding: UnsafeBufferPointer(rebasing: bytes[offset..<max(end, offset + 1)]), as: UTF8.self)
            problem = "'\(found)' is not a JSON value (did you mean \(literal)?)"
        }
        let (line, column) = position(of: offset)
        return JSONValueParseError(problem: problem, line: line, column: column, byteOffset: offset, isTooDeep: false)
    }

    private func tooDeep() -> JSONValueParseError {
        let (line, column) = position(of: index)
        return JSONValueParseError(problem: "nested deeper than \(maximumDepth) levels", line: line, column: column,
                                   byteOffset: index, isTooDeep: true)
    }

    private func endTooEarly(_ expectation: String) -> JSONValueParseError {
        failure("it ends too early (\(expectation); a closing bracket, brace or quote may be missing)", at: bytes.count)
    }

    /// The byte at `index` is not what `expectation` says; names it, with a hint for the usual
    /// non-JSON spellings (comments, single quotes, NaN, Infinity) and invalid UTF-8.
    private func unexpected(_ expectation: String) -> JSONValueParseError {
        let byte = bytes[index]
        switch byte {
        case UInt8(ascii: "/"):
            return failure("comments are not allowed in JSON", at: index)
        case UInt8(ascii: "'"):
            return failure("strings must be in double quotes, not single quotes", at: index)
        case UInt8(ascii: "N") where starts(with: "NaN"):
            return failure("NaN is not a JSON number", at: index)
        case UInt8(ascii: "I") where starts(with: "Infinity"):
            return failure("Infinity is not a JSON number", at: index)
        case 0x80...0xFF where utf8SequenceLength(at: index) == nil:
            return invalidUTF8(at: index)
        default:
            return failure("\(expectation), found \(describeFound(at: index))", at: index)
        }
    }

    private func starts(with word: String) -> Bool {
        index + word.utf8.count <= bytes.count && zip(bytes[index...], word.utf8).allSatisfy { $0 == $1 }
    }

    private func controlCharacter(_ byte: UInt8) -> JSONValueParseError {
        let code = "U+00" + hexText(UInt32(byte)).suffix(2).uppercased()
        return failure("unescaped control character \(code) in a string; write it as \\u00\(hexText(UInt32(byte)).suffix(2))", at: index)
    }

    private func invalidUTF8(at offset: Int) -> JSONValueParseError {
        failure("invalid UTF-8 (byte 0x\(String(bytes[offset], radix: 16, uppercase: true)))", at: offset)
    }

    /// `'x'` for a printable character, `U+0001` for a control one.
    private func describeFound(at offset: Int) -> String {
        let byte = bytes[offset]
        if byte < 0x20 || byte == 0x7F { return "U+00" + hexText(UInt32(byte)).suffix(2).uppercased() }
        if byte < 0x80 { return "'\(Character(Unicode.Scalar(byte)))'" }
        var end = offset + 1
        while end < bytes.count, end - offset < 4, bytes[end] & 0xC0 == 0x80 { end += 1 }
        return "'\(String(decoding: UnsafeBufferPointer(rebasing: bytes[offset..<end]), as: UTF8.self))'"
    }

    private func describe(_ byte: UInt8) -> String {
        byte >= 0x20 && byte < 0x7F ? String(Character(Unicode.Scalar(byte))) : "U+00" + hexText(UInt32(byte)).suffix(2).uppercased()
    }

    /// 1-based line and column (in Unicode scalars) of a byte offset.
    func position(of offset: Int) -> (line: Int, column: Int) {
        var line = 1
        var column = 1
        for byte in UnsafeBufferPointer(rebasing: bytes[0..<min(offset, bytes.count)]) {
            if byte == 0x0A {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        return (line, column)
    }
}
