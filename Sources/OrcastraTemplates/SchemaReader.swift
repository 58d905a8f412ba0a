import Yams

/// Reads the `input_schema` subset of JSON Schema from YAML.
struct SchemaReader {
    let session: ParseSession

    static let keys = ["type", "description", "required", "properties", "enum", "items"]
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
        return ok ? schema : nil
    }
}

extension String {
    /// "…'x'? Use one of" reads fine; "…'x' Use one of" (no suggestion) needs a separator.
    fileprivate func replacingFirstSemicolonGap() -> String {
        guard let range = range(of: "' Use one of") else { return self }
        return replacingCharacters(in: range, with: "'; use one of")
    }
}
