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
    /// Every file is read and checked before anything is thrown, so one run
    /// reports the problems of all files; two files that declare the same
    /// `namespace/name@version` are reported too.
    ///
    /// - Throws: ``TemplateValidationError`` with the issues of all files.
    public static func load(path: String) throws(TemplateValidationError) -> [LoadedTemplate] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TemplateValidationError(issues: [
                TemplateIssue(file: path, line: 0, column: 0, path: "", message: "no such file or directory; check the path"),
            ])
        }
        var files = [path]
        if isDirectory.boolValue {
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: path)
            } catch {
                throw TemplateValidationError(issues: [
                    TemplateIssue(file: path, line: 0, column: 0, path: "", message: "cannot list the directory: \(error.localizedDescription)"),
                ])
            }
            files = names
                .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
                .sorted()
                .map { (path as NSString).appendingPathComponent($0) }
            if files.isEmpty {
                throw TemplateValidationError(issues: [
                    TemplateIssue(file: path, line: 0, column: 0, path: "", message: "contains no .yaml or .yml files"),
                ])
            }
        }

        var loaded: [LoadedTemplate] = []
        var issues: [TemplateIssue] = []
        var declaredBy: [String: String] = [:]
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                issues.append(TemplateIssue(file: file, line: 0, column: 0, path: "", message: "cannot be read; check that it exists and is readable"))
                continue
            }
            guard let source = String(data: data, encoding: .utf8) else {
                issues.append(TemplateIssue(file: file, line: 0, column: 0, path: "", message: "is not UTF-8 text; save it as UTF-8"))
                continue
            }
            let result = TemplateParser.parseCollectingIssues(yaml: source, file: file)
            issues += result.issues
            guard let template = result.template else { continue }
            if let other = declaredBy[template.reference] {
                issues.append(TemplateIssue(
                    file: file, line: result.identityPosition?.line ?? 0, column: result.identityPosition?.column ?? 0, path: "name",
                    message: "\(template.reference) is already declared in \(other); bump the version or rename one of them"
                ))
                continue
            }
            declaredBy[template.reference] = file
            loaded.append(LoadedTemplate(file: file, source: source, template: template))
        }
        guard issues.isEmpty else { throw TemplateValidationError(issues: issues) }
        return loaded
    }
}
