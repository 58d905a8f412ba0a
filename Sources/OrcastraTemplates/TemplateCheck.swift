/// What ``TemplateLoader/check(paths:)`` found: every file, valid or not, and the paths that
/// do not exist.
public struct TemplateCheck: Sendable, Equatable {
    /// In the order of the paths given, a folder's files sorted by name. A path that names no
    /// template file (missing, an empty folder) is here too, with its issue.
    public var files: [TemplateFileCheck] = []
    /// The paths given that do not exist.
    public var missingPaths: [String] = []

    public init() {}

    /// Every issue of every file, in file order.
    public var issues: [TemplateIssue] { files.flatMap(\.issues) }

    /// The valid files' templates.
    public var loaded: [LoadedTemplate] {
        files.compactMap { file in
            guard file.isValid, let template = file.template, let source = file.source else { return nil }
            return LoadedTemplate(file: file.file, source: source, template: template)
        }
    }
}

/// One template file as checked, or a path that names none.
public struct TemplateFileCheck: Sendable, Equatable {
    public var file: String
    /// The file's text; nil when it could not be read.
    public var source: String?
    /// The template the file declares, when it parsed. A file whose template is declared by an
    /// earlier file too has it, with an issue.
    public var template: WorkflowTemplate?
    public var issues: [TemplateIssue]

    public init(file: String, source: String? = nil, template: WorkflowTemplate? = nil, issues: [TemplateIssue]) {
        self.file = file
        self.source = source
        self.template = template
        self.issues = issues
    }

    public var isValid: Bool { issues.isEmpty && template != nil }
}
