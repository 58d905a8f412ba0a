import OrcastraTemplates

/// One file of `template validate --json` and `template register --json`: the same object for
/// both, `register` adding what became of the file (`outcome`, `id`, `error`). Unknown values
/// are `null`, never left out, so every object has every key.
struct TemplateFileJSON: Encodable {
    var check: TemplateFileCheck
    var registration: Registration?

    /// What `register` did with a file.
    struct Registration {
        enum Outcome: String {
            /// A new version was stored.
            case registered
            /// The same version with the same content was there already.
            case unchanged
            /// The same version is registered with other content.
            case refused
            /// The file has issues; nothing was registered from any file.
            case invalid
            /// The file is valid but another one is not, so nothing was registered.
            case skipped
        }

        var outcome: Outcome
        var id: Int64?
        var error: String?
    }

    enum CodingKeys: String, CodingKey {
        case file, valid, template, namespace, name, version, steps, issues, outcome, id, error
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        let template = check.template
        try container.encode(check.file, forKey: .file)
        try container.encode(check.isValid, forKey: .valid)
        try container.encode(template?.reference, forKey: .template)
        try container.encode(template?.namespace, forKey: .namespace)
        try container.encode(template?.name, forKey: .name)
        try container.encode(template?.version.description, forKey: .version)
        try container.encode(template?.steps.count, forKey: .steps)
        try container.encode(check.issues.map(IssueJSON.init), forKey: .issues)
        if let registration {
            try container.encode(registration.outcome.rawValue, forKey: .outcome)
            try container.encode(registration.id, forKey: .id)
            try container.encode(registration.error, forKey: .error)
        }
    }

    /// An issue: `line`, `column` and `path` are null when it concerns the whole file.
    struct IssueJSON: Encodable {
        var line: Int?
        var column: Int?
        var path: String?
        var message: String

        init(_ issue: TemplateIssue) {
            line = issue.line > 0 ? issue.line : nil
            column = issue.column > 0 ? issue.column : nil
            path = issue.path.isEmpty ? nil : issue.path
            message = issue.message
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(line, forKey: .line)
            try container.encode(column, forKey: .column)
            try container.encode(path, forKey: .path)
            try container.encode(message, forKey: .message)
        }

        enum CodingKeys: String, CodingKey { case line, column, path, message }
    }
}
