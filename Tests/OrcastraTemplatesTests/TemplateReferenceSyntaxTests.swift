import Testing
import OrcastraTemplates

/// The one reader of `namespace/name[@version]` that `workflow:` steps, the command line, the API
/// and schedules share (it replaced three copies that differed at the edges: `a/b@` was a/b for the
/// command line and an error for schedules).
@Suite(.timeLimit(.minutes(5))) struct TemplateReferenceSyntaxTests {
    @Test(arguments: [
        ("billing/refunds", "billing", "refunds", nil),
        ("billing/refunds@1.2.0", "billing", "refunds", "1.2.0"),
        ("a-b/c_d@2.0.0-rc.1", "a-b", "c_d", "2.0.0-rc.1"),
    ] as [(String, String, String, String?)])
    func wellFormedReferencesAreRead(text: String, namespace: String, name: String, version: String?) throws {
        let parts = try TemplateReferenceSyntax.parse(text)
        #expect(parts.namespace == namespace)
        #expect(parts.name == name)
        #expect(parts.version?.description == version)
    }

    @Test(arguments: ["billing", "/refunds", "billing/", "a/b/c", "", "@1.0.0"])
    func notTwoNamesIsTheShapeProblem(text: String) {
        #expect(throws: TemplateReferenceSyntax.Problem.shape) { try TemplateReferenceSyntax.parse(text) }
    }

    @Test func aBadNameIsNamedWithItsRole() {
        #expect(throws: TemplateReferenceSyntax.Problem.invalidName(label: "namespace", part: "Billing", problem: "it starts with 'B'")) {
            try TemplateReferenceSyntax.parse("Billing/refunds")
        }
        #expect(throws: TemplateReferenceSyntax.Problem.invalidName(label: "name", part: "re funds", problem: "it contains ' '")) {
            try TemplateReferenceSyntax.parse("billing/re funds@1.0.0")
        }
    }

    @Test(arguments: ["a/b@", "a/b@1.2", "a/b@1.0.0@2", "a/b@1.0.0+build"])
    func aBadVersionIsAVersionProblem(text: String) {
        let version = String(text[text.index(after: text.firstIndex(of: "@")!)...])
        #expect {
            try TemplateReferenceSyntax.parse(text)
        } throws: { error in
            guard case .invalidVersion(let given, let message) = error as? TemplateReferenceSyntax.Problem else { return false }
            return given == version && !message.isEmpty
        }
    }
}
