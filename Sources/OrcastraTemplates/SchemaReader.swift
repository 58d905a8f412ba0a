import Yams

/// Reads the `input_schema` subset of JSON Schema from YAML.
struct SchemaReader {
    let session: ParseSession

    static let keys = ["type", "description", "required", "properties", "additionalProperties", "enum", "const", "items",
                       "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern",
                       "format", "minItems", "maxItems", "uniqueItems"]
    /// Deeper schemas are almost certainly a mistake, and the reader recurses.
    static let maximumDepth = 32
    /// Names people reach for from other languages, mapped to the JSON Schema spelling.
    static let typeAliases: [String: String] = [
        "int": "integer", "long": "integer", "float": "number", "double": "number", "decimal": "number",
        "str": "string", "text": "string", "bool": "boolean", "list": "array", "dict": "object",
        "map": "object", "hash": "object", "nil": "null", "none": "null",
    ]

    func read(_ node: Node, path: String, depth: Int) -> JSONSchema? {
        guard depth < Self.maximumDepth else {
            session.report(node, path: path, "input_schema is nested more than \(Self.maximumDepth) levels deep; flatten it")
            return nil
        }
        guard let mapping = session.mapping(node, path: path, label: "a schema",
                                           example: "{type: object, required: [id], properties: {id: {type: integer}}}") else { return nil }
        let entries = session.entries(of: mapping, allowed: Self.keys, path: path, owner: "the schema")
        var schema = JSONSchema()
        var ok = true

        if let entry = entries["type"] {
            let typePath = ParseSession.path(path, "type")
            var names: [(String, Node)] = []
            if let list = entry.value.sequence {
                for (i, element) in list.enumerated() {
                    if let text = session.text(element, path: ParseSession.path(typePath, index: i), label: "type") {
                        names.append((text, element))
                    } else { ok = false }
                }
            } else if let text = session.text(entry.value, path: typePath, label: "type") {
                names.append((text, entry.value))
            } else { ok = false }
            for (name, element) in names {
                if let type = JSONSchema.SchemaType(rawValue: name) {
                    schema.types.append(type)
                } else {
                    let all = JSONSchema.SchemaType.allCases.map(\.rawValue)
                    let hint = Self.typeAliases[name].map { "; did you mean '\($0)'?" }
                        ?? EditDistance.didYouMean(name, among: all)
                    session.report(element, path: typePath,
                                   "unknown type '\(name)'\(hint) Use one of: \(all.joined(separator: ", ")).".replacingFirstSemicolonGap())
                    ok = false
                }
            }
        }
        if let entry = entries["description"] {
            schema.description = session.text(entry.value, path: ParseSession.path(path, "description"), label: "description")
        }
        if let entry = entries["properties"] {
            let propertiesPath = ParseSession.path(path, "properties")
            if let properties = session.mapping(entry.value, path: propertiesPath, label: "properties",
                                                example: "properties: {email: {type: string}}") {
                var result: [String: JSONSchema] = [:]
                for (key, value) in properties {
                    guard let name = key.scalar?.string else {
                        session.report(key, path: propertiesPath, "property names must be text, got \(ParseSession.describe(key))")
                        ok = false
                        continue
                    }
                    if let child = read(value, path: ParseSession.path(propertiesPath, name), depth: depth + 1) {
                        result[name] = child
                    } else { ok = false }
                }
                schema.properties = result
            } else { ok = false }
        }
        if let entry = entries["required"] {
            let requiredPath = ParseSession.path(path, "required")
            if let list = session.sequence(entry.value, path: requiredPath, label: "required", example: "required: [email, items]") {
                for (i, element) in list.enumerated() {
                    guard let name = session.text(element, path: ParseSession.path(requiredPath, index: i), label: "a required entry") else {
                        ok = false
                        continue
                    }
                    if let properties = schema.properties, properties[name] == nil {
                        let known = properties.keys.sorted()
                        let hint = EditDistance.didYouMean(name, among: known)
                        session.report(element, path: ParseSession.path(requiredPath, index: i),
                                       "required property '\(name)' is not listed under properties\(hint.isEmpty ? "; add it to properties or fix the name" : hint)")
                        ok = false
                    }
                    schema.required.append(name)
                }
            } else { ok = false }
        }
        if let entry = entries["enum"] {
            let enumPath = ParseSession.path(path, "enum")
            if let list = session.sequence(entry.value, path: enumPath, label: "enum", example: "enum: [standard, express]") {
                if list.isEmpty {
                    session.report(entry.value, path: enumPath, "enum is empty, so no value could ever match; list the allowed values")
                    ok = false
                }
                var values: [JSONValue] = []
                for (i, element) in list.enumerated() {
                    if let value = session.jsonValue(element, path: ParseSession.path(enumPath, index: i)) {
                        values.append(value)
                    } else { ok = false }
                }
                schema.enumValues = values
            } else { ok = false }
        }
        if let entry = entries["items"] {
            if let items = read(entry.value, path: ParseSession.path(path, "items"), depth: depth + 1) {
                schema.items = items
            } else { ok = false }
        }
        if let entry = entries["const"] {
            if let value = session.jsonValue(entry.value, path: ParseSession.path(path, "const")) {
                schema.constValue = value
            } else { ok = false }
        }
        if let entry = entries["additionalProperties"] {
            let keyPath = ParseSession.path(path, "additionalProperties")
            if entry.value.scalar != nil, entry.value.tag.rawValue == Tag.Name.bool.rawValue, let allowed = entry.value.bool {
                schema.additionalProperties = .allowed(allowed)
            } else if entry.value.mapping != nil, let child = read(entry.value, path: keyPath, depth: depth + 1) {
                schema.additionalProperties = .schema(child)
            } else {
                if entry.value.mapping == nil {
                    session.report(entry.value, path: keyPath,
                                   "additionalProperties must be true, false or a schema, got \(ParseSession.describe(entry.value)); write it like additionalProperties: false")
                }
                ok = false
            }
        }
        ok = readKeywords(entries, into: &schema, path: path) && ok
        return ok ? schema : nil
    }

    /// The validation keywords of numbers, strings and arrays: each value checked on its own,
    /// then the pairs that contradict each other (`minimum` above `maximum`) and keywords that
    /// cannot apply to the schema's `type` (`minLength` on an integer checks nothing).
    private func readKeywords(_ entries: [String: (key: Node, value: Node)], into schema: inout JSONSchema, path: String) -> Bool {
        var ok = true
        func number(_ key: String) -> JSONNumber? {
            guard let entry = entries[key] else { return nil }
            let keyPath = ParseSession.path(path, key)
            if case .number(let value)? = YAMLNodes.json(entry.value, path: keyPath, report: { _, _, _ in }),
               entry.value.scalar != nil {
                return value
            }
            session.report(entry.value, path: keyPath, "\(key) must be a number, got \(ParseSession.describe(entry.value)); write it like \(key): 10")
            ok = false
            return nil
        }
        func count(_ key: String) -> Int? {
            guard let entry = entries[key] else { return nil }
            let keyPath = ParseSession.path(path, key)
            guard let value = session.integer(entry.value, path: keyPath, label: key) else {
                ok = false
                return nil
            }
            guard value >= 0 else {
                session.report(entry.value, path: keyPath, "\(key) must be 0 or more, got \(value)")
                ok = false
                return nil
            }
            return value
        }
        schema.minimum = number("minimum")
        schema.maximum = number("maximum")
        schema.exclusiveMinimum = number("exclusiveMinimum")
        schema.exclusiveMaximum = number("exclusiveMaximum")
        schema.minLength = count("minLength")
        schema.maxLength = count("maxLength")
        schema.minItems = count("minItems")
        schema.maxItems = count("maxItems")
        if let entry = entries["uniqueItems"] {
            if let value = session.boolean(entry.value, path: ParseSession.path(path, "uniqueItems"), label: "uniqueItems") {
                schema.uniqueItems = value
            } else { ok = false }
        }
        if let entry = entries["pattern"] {
            let keyPath = ParseSession.path(path, "pattern")
            if let text = session.text(entry.value, path: keyPath, label: "pattern") {
                switch Result(catching: { try SchemaPattern.compile(text) }) {
                case .success:
                    schema.pattern = text
                case .failure(let error):
                    session.report(entry.value, path: keyPath,
                                   "pattern '\(text)' is not a valid regular expression: \(error); fix it, or quote it in single quotes so YAML keeps every backslash")
                    ok = false
                }
            } else { ok = false }
        }
        if let entry = entries["format"] {
            let keyPath = ParseSession.path(path, "format")
            if let text = session.text(entry.value, path: keyPath, label: "format") {
                if let format = SchemaFormat(rawValue: text) {
                    schema.format = format
                } else {
                    let names = SchemaFormat.allCases.map(\.rawValue)
                    session.report(entry.value, path: keyPath,
                                   "unknown format '\(text)'\(EditDistance.didYouMean(text, among: names)); Orcastra checks these formats: \(names.joined(separator: ", "))")
                    ok = false
                }
            } else { ok = false }
        }
        ok = checkRanges(entries, schema, path: path) && ok
        ok = checkTypes(entries, schema, path: path) && ok
        return ok
    }

    /// A lower bound above its upper bound would refuse every value.
    private func checkRanges(_ entries: [String: (key: Node, value: Node)], _ schema: JSONSchema, path: String) -> Bool {
        var ok = true
        func contradiction(_ low: String, _ high: String, _ lowText: String?, _ highText: String?, _ isEmpty: Bool) {
            guard isEmpty, let lowText, let highText, let entry = entries[low] else { return }
            session.report(entry.value, path: ParseSession.path(path, low),
                           "\(low) (\(lowText)) is above \(high) (\(highText)), so no value could ever match; lower \(low) or raise \(high)")
            ok = false
        }
        if let low = schema.minimum, let high = schema.maximum {
            contradiction("minimum", "maximum", low.text, high.text, low.compare(to: high) > 0)
        }
        if let low = schema.exclusiveMinimum, let high = schema.exclusiveMaximum {
            contradiction("exclusiveMinimum", "exclusiveMaximum", low.text, high.text, low.compare(to: high) >= 0)
        }
        if let low = schema.minLength, let high = schema.maxLength {
            contradiction("minLength", "maxLength", String(low), String(high), low > high)
        }
        if let low = schema.minItems, let high = schema.maxItems {
            contradiction("minItems", "maxItems", String(low), String(high), low > high)
        }
        return ok
    }

    /// Keywords that only constrain one kind of value, under a `type` that excludes that kind.
    private func checkTypes(_ entries: [String: (key: Node, value: Node)], _ schema: JSONSchema, path: String) -> Bool {
        guard !schema.types.isEmpty else { return true }
        let kinds: [(keys: [String], types: Set<JSONSchema.SchemaType>, kind: String)] = [
            (["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"], [.number, .integer], "numbers"),
            (["minLength", "maxLength", "pattern", "format"], [.string], "strings"),
            (["minItems", "maxItems", "uniqueItems", "items"], [.array], "arrays"),
            (["properties", "required", "additionalProperties"], [.object], "objects"),
        ]
        var ok = true
        let declared = schema.types.map(\.rawValue).joined(separator: ", ")
        for kind in kinds where kind.types.isDisjoint(with: schema.types) {
            for key in kind.keys {
                guard let entry = entries[key] else { continue }
                session.report(entry.key, path: ParseSession.path(path, key),
                               "\(key) only applies to \(kind.kind), but this schema's type is \(declared); remove \(key) or fix the type")
                ok = false
            }
        }
        return ok
    }
}

extension String {
    /// "…'x'? Use one of" reads fine; "…'x' Use one of" (no suggestion) needs a separator.
    fileprivate func replacingFirstSemicolonGap() -> String {
        guard let range = range(of: "' Use one of") else { return self }
        return replacingCharacters(in: range, with: "'; use one of")
    }
}
