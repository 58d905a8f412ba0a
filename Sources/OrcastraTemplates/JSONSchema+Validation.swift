extension JSONSchema {
    /// Every way `value` breaks this schema, with paths like
    /// `context.customer.email` or `context.items[2]`; empty when it conforms.
    public func validate(_ value: JSONValue, at path: String = "context") -> [SchemaViolation] {
        var violations: [SchemaViolation] = []
        if !types.isEmpty, !types.contains(where: { $0.accepts(value) }) {
            let expected = types.map { Self.article(for: $0.rawValue) }.joined(separator: " or ")
            violations.append(.init(path: path, message: "must be \(expected), got \(value.typeName)"))
            return violations
        }
        if let enumValues, !enumValues.contains(value) {
            let options = enumValues.map(Self.display).joined(separator: ", ")
            violations.append(.init(path: path, message: "must be one of: \(options); got \(Self.display(value))"))
        }
        if let constValue, constValue != value {
            violations.append(.init(path: path, message: "must be \(constValue.jsonText), got \(value.jsonText)"))
        }
        switch value {
        case .object(let object):
            violations += validateObject(object, at: path)
        case .array(let elements):
            violations += validateArray(elements, at: path)
        case .number(let number):
            violations += validateNumber(number, at: path)
        case .string(let text):
            violations += validateString(text, at: path)
        default:
            break
        }
        return violations
    }

    private func validateObject(_ object: [String: JSONValue], at path: String) -> [SchemaViolation] {
        var violations: [SchemaViolation] = []
        for name in required where object[name] == nil {
            violations.append(.init(path: "\(path).\(name)", message: "is required"))
        }
        for (name, schema) in (properties ?? [:]).sorted(by: { $0.key < $1.key }) {
            if let child = object[name] {
                violations += schema.validate(child, at: "\(path).\(name)")
            }
        }
        switch additionalProperties {
        case .allowed(false):
            let known = (properties ?? [:]).keys.sorted()
            for name in object.keys.sorted() where properties?[name] == nil {
                let hint = EditDistance.didYouMean(name, among: known)
                let allowed = known.isEmpty ? "no properties are allowed" : "allowed: \(known.joined(separator: ", "))"
                violations.append(.init(path: "\(path).\(name)",
                                        message: "is not allowed (additionalProperties is false)\(hint.isEmpty ? "; \(allowed)" : hint)"))
            }
        case .schema(let schema):
            for name in object.keys.sorted() where properties?[name] == nil {
                violations += schema.validate(object[name]!, at: "\(path).\(name)")
            }
        case .allowed(true), nil:
            break
        }
        return violations
    }

    private func validateArray(_ elements: [JSONValue], at path: String) -> [SchemaViolation] {
        var violations: [SchemaViolation] = []
        if let minItems, elements.count < minItems {
            violations.append(.init(path: path, message: "must have at least \(minItems) \(Self.plural(minItems, "item")), got \(elements.count)"))
        }
        if let maxItems, elements.count > maxItems {
            violations.append(.init(path: path, message: "must have at most \(maxItems) \(Self.plural(maxItems, "item")), got \(elements.count)"))
        }
        if uniqueItems {
            var firstIndex: [JSONValue: Int] = [:]
            for (index, element) in elements.enumerated() {
                if let first = firstIndex[element] {
                    violations.append(.init(path: "\(path)[\(index)]",
                                            message: "repeats \(path)[\(first)] (uniqueItems is true); remove the duplicate"))
                } else {
                    firstIndex[element] = index
                }
            }
        }
        if let items {
            for (index, element) in elements.enumerated() {
                violations += items.validate(element, at: "\(path)[\(index)]")
            }
        }
        return violations
    }

    private func validateNumber(_ number: JSONNumber, at path: String) -> [SchemaViolation] {
        var violations: [SchemaViolation] = []
        if let minimum, number.compare(to: minimum) < 0 {
            violations.append(.init(path: path, message: "must be at least \(minimum), got \(number)"))
        }
        if let exclusiveMinimum, number.compare(to: exclusiveMinimum) <= 0 {
            violations.append(.init(path: path, message: "must be greater than \(exclusiveMinimum), got \(number)"))
        }
        if let maximum, number.compare(to: maximum) > 0 {
            violations.append(.init(path: path, message: "must be at most \(maximum), got \(number)"))
        }
        if let exclusiveMaximum, number.compare(to: exclusiveMaximum) >= 0 {
            violations.append(.init(path: path, message: "must be less than \(exclusiveMaximum), got \(number)"))
        }
        return violations
    }

    private func validateString(_ text: String, at path: String) -> [SchemaViolation] {
        var violations: [SchemaViolation] = []
        // JSON Schema counts code points, not grapheme clusters or UTF-16 units.
        let length = text.unicodeScalars.count
        if let minLength, length < minLength {
            violations.append(.init(path: path, message: "must be at least \(minLength) \(Self.plural(minLength, "character")) long, got \(length)"))
        }
        if let maxLength, length > maxLength {
            violations.append(.init(path: path, message: "must be at most \(maxLength) \(Self.plural(maxLength, "character")) long, got \(length)"))
        }
        if let pattern, let regex = try? SchemaPattern.compile(pattern), (try? regex.firstMatch(in: text)) == nil {
            violations.append(.init(path: path, message: "must match the pattern \(pattern), got \(JSONValue.string(text).jsonText)"))
        }
        if let format, let problem = format.problem(with: text) {
            violations.append(.init(path: path, message: "must be \(format.label) (\(problem)), got \(JSONValue.string(text).jsonText)"))
        }
        return violations
    }

    static func plural(_ count: Int, _ noun: String) -> String {
        count == 1 ? noun : noun + "s"
    }
}

/// A schema's `pattern`, compiled by Swift's own regular expression engine (its syntax is a
/// superset of the ECMA-262 expressions JSON Schema names, minus lookbehind).
enum SchemaPattern {
    static func compile(_ pattern: String) throws -> Regex<AnyRegexOutput> {
        try Regex(pattern)
    }
}

extension JSONNumber {
    /// -1, 0 or 1 as `self` is below, equal to or above `other`, exactly (no rounding through
    /// Double: `9007199254740993` is above `9007199254740992`).
    public func compare(to other: JSONNumber) -> Int {
        let a = DecimalDigits(text), b = DecimalDigits(other.text)
        if a == b { return 0 }
        let signA = a.digits.isEmpty ? 0 : (a.negative ? -1 : 1)
        let signB = b.digits.isEmpty ? 0 : (b.negative ? -1 : 1)
        if signA != signB { return signA < signB ? -1 : 1 }
        // Same sign, both non-zero: compare magnitudes, then flip for negatives.
        let magnitude = Self.compareMagnitudes(a, b)
        return signA < 0 ? -magnitude : magnitude
    }

    private static func compareMagnitudes(_ a: DecimalDigits, _ b: DecimalDigits) -> Int {
        // The position of the leading digit: value = 0.d1d2… × 10^(count + exponent).
        let orderA = a.digits.count + a.exponent, orderB = b.digits.count + b.exponent
        if orderA != orderB { return orderA < orderB ? -1 : 1 }
        for index in 0..<max(a.digits.count, b.digits.count) {
            let digitA = index < a.digits.count ? a.digits[index] : UInt8(ascii: "0")
            let digitB = index < b.digits.count ? b.digits[index] : UInt8(ascii: "0")
            if digitA != digitB { return digitA < digitB ? -1 : 1 }
        }
        return 0
    }
}
