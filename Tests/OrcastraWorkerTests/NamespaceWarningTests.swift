import Testing
@testable import OrcastraWorker

/// The start-up warning of a worker whose namespace no registered template uses.
@Suite(.timeLimit(.minutes(5))) struct NamespaceWarningTests {
    @Test func aNamespaceInUseIsNotWarnedAbout() {
        #expect(Worker.namespaceWarning("billing", inUse: ["billing", "mail"]) == nil)
    }

    @Test func theNamespacesInUseAreNamedClosestFirst() throws {
        let warning = try #require(Worker.namespaceWarning("ghosts", inUse: ["billing", "ghost", "hosts", "mail"]))
        #expect(warning.hasPrefix("no registered template has steps in namespace ghosts"))
        #expect(warning.hasSuffix("namespaces in use: ghost, hosts, mail, billing (closest first)"), "\(warning)")
    }

    @Test func aLongListIsCut() throws {
        let many = (0..<15).map { "ns\($0)" }
        let warning = try #require(Worker.namespaceWarning("ns", inUse: many, listed: 3))
        #expect(warning.contains("namespaces in use: ns0, ns1, ns2, and 12 more (closest first)"), "\(warning)")
    }

    @Test func noTemplateAtAllIsSaidSo() {
        #expect(Worker.namespaceWarning("billing", inUse: [])
            == "no template is registered yet: this worker gets no work until one with steps in namespace billing is")
    }
}
