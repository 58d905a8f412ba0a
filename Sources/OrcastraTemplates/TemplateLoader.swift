import Foundation

/// A template together with where it came from; the source text is kept
/// because the database stores it next to the normalized definition.
public struct LoadedTemplate: Sendable, Equatable {
    public var file: String
    public var source: String
    public var template: WorkflowTemplate

    public init(file: String, source: String, template: WorkflowTemplate) {
        self.file = file
        self.source = source
        self.template = template
    }
}

/// Reads template files from disk, for `orcastra template validate|register`.
public enum TemplateLoader {
    /// Loads one file, or every `*.yaml` / `*.yml` file directly inside a
    /// directory (not its subdirectories), sorted by file name.
    ///
    /// - Throws: ``TemplateValidationError`` with the issues of all files.
    public static func load(path: String) throws(TemplateValidationError) -> [LoadedTemplate] {
        try load(paths: [path])
    }

    /// Loads every file that `paths` name, as ``check(paths:)`` does.
    ///
    /// - Throws: ``TemplateValidationError`` with the issues of all files.
    public static func load(paths: [String]) throws(TemplateValidationError) -> [LoadedTemplate] {
        let check = check(paths: paths)
        guard check.issues.isEmpty else { throw TemplateValidationError(issues: check.issues) }
        return check.loaded
    }

    /// Reads and checks every file that `paths` name: a file, or every `*.yaml` / `*.yml` file
    /// directly inside a directory (not its subdirectories), sorted by file name. A file named
    /// twice (say, through its folder and by itself) is read once.
    ///
    /// Every file is read and checked, so one run reports the problems of all files; two files
    /// that declare the same `namespace/name@version` are reported too.
    public static func check(paths: [String]) -> TemplateCheck {
        var check = TemplateCheck()
        var seen: Set<String> = []
        var declaredBy: [String: String] = [:]
        for path in paths {
            let files: [String]
            switch expand(path) {
            case .files(let names): files = names
            case .missing:
                check.missingPaths.append(path)
                check.files.append(TemplateFileCheck(file: path, issues: [wholeFile(path, "no such file or directory; check the path")]))
                continue
            case .problem(let message):
                check.files.append(TemplateFileCheck(file: path, issues: [wholeFile(path, message)]))
                continue
            }
            for file in files where seen.insert((file as NSString).standardizingPath).inserted {
                var result = read(file)
                if let template = result.template, result.issues.isEmpty {
                    if let other = declaredBy[template.reference] {
                        result.issues.append(TemplateIssue(
                            file: file, line: result.identityPosition?.line ?? 0, column: result.identityPosition?.column ?? 0,
                            path: "name", message: "\(template.reference) is already declared in \(other); bump the version or rename one of them"))
                    } else {
                        declaredBy[template.reference] = file
                    }
                }
                check.files.append(TemplateFileCheck(file: file, source: result.source, template: result.template, issues: result.issues))
            }
        }
        return check
    }

    private enum Expansion {
        case files([String])
        case missing
        /// The path exists but names no template file: the message says why.
        case problem(String)
    }

    private static func expand(_ path: String) -> Expansion {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return .missing }
        guard isDirectory.boolValue else { return .files([path]) }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else {
            return .problem("cannot list the directory; check its permissions")
        }
        let files = names
            .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
            .sorted()
            .map { (path as NSString).appendingPathComponent($0) }
        return files.isEmpty ? .problem("contains no .yaml or .yml files") : .files(files)
    }

    private struct FileResult {
        var source: String?
        var template: WorkflowTemplate?
        var issues: [TemplateIssue]
        var identityPosition: SourcePosition?
    }

    private static func read(_ file: String) -> FileResult {
        guard let data = FileManager.default.contents(atPath: file) else {
            return FileResult(issues: [wholeFile(file, "cannot be read; check that it exists and is readable")])
        }
        guard let source = String(data: data, encoding: .utf8) else {
            return FileResult(issues: [wholeFile(file, "is not UTF-8 text; save it as UTF-8")])
        }
        let parsed = TemplateParser.parseCollectingIssues(yaml: source, file: file)
        return FileResult(source: source, template: parsed.template, issues: parsed.issues, identityPosition: parsed.identityPosition)
    }

    private static func wholeFile(_ file: String, _ message: String) -> TemplateIssue {
        TemplateIssue(file: file, line: 0, column: 0, path: "", message: message)
    }
}
