import Foundation
import OrcastraTemplates

/// Access to the files under Fixtures/, which SwiftPM copies into the test bundle.
enum Fixtures {
    static var directory: URL {
        Bundle.module.resourceURL!.appendingPathComponent("Fixtures")
    }

    static func url(_ relativePath: String) -> URL {
        directory.appendingPathComponent(relativePath)
    }

    static func text(_ relativePath: String) throws -> String {
        try String(contentsOf: url(relativePath), encoding: .utf8)
    }

    /// The issues a fixture produces (empty when it parses).
    static func issues(_ relativePath: String) throws -> [TemplateIssue] {
        do {
            _ = try TemplateParser.parse(yaml: try text(relativePath), file: relativePath)
            return []
        } catch let error as TemplateValidationError {
            return error.issues
        }
    }

    /// A template from YAML that is expected to be valid.
    static func template(_ yaml: String) throws -> WorkflowTemplate {
        try TemplateParser.parse(yaml: yaml, file: "inline.yaml")
    }
}
