/// One problem found in a template file.
///
/// Every issue carries its own position and path so that a person can jump
/// straight to it; the parser collects all of them before giving up, because
/// fixing a file one error per run is tedious.
public struct TemplateIssue: Error, Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The file the issue was found in, as given to the parser or loader.
    public var file: String
    /// 1-based line; 0 when the issue concerns the whole file (for example, it cannot be read).
    public var line: Int
    /// 1-based column; 0 when unknown.
    public var column: Int
    /// Where in the document the issue is, like `steps[3].depends_on[1]`; empty for the whole document.
    public var path: String
    /// One sentence saying what is wrong and how to fix it.
    public var message: String

    public init(file: String, line: Int, column: Int, path: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.message = message
    }

    /// `FILE:LINE:COLUMN: PATH: MESSAGE`, the format compilers use, so editors
    /// and terminals can link to the position. Unknown positions and an empty
    /// path are left out rather than printed as zeros.
    public var description: String {
        var text = file
        if line > 0 {
            text += ":\(line)"
            if column > 0 { text += ":\(column)" }
        }
        text += ": "
        if !path.isEmpty { text += "\(path): " }
        return text + message
    }
}

/// All problems found in one or more template files, thrown as one error so
/// that a caller (the CLI, a test) can print every one of them at once.
public struct TemplateValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// In file order, then line order.
    public var issues: [TemplateIssue]

    public init(issues: [TemplateIssue]) {
        self.issues = issues
    }

    public var description: String {
        let files = issues.reduce(into: [String]()) { seen, issue in
            if !seen.contains(issue.file) { seen.append(issue.file) }
        }
        let count = issues.count == 1 ? "1 error" : "\(issues.count) errors"
        let header: String
        if files.count == 1 {
            header = "\(files[0]) has \(count):"
        } else {
            header = "\(count) in \(files.count) files:"
        }
        return ([header] + issues.map { "  " + $0.description }).joined(separator: "\n")
    }
}
