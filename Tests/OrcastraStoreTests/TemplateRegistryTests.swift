import Foundation
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import Testing

@Suite(.timeLimit(.minutes(5))) struct TemplateRegistryTests {
    @Test func registeringTheSameContentTwiceIsANoOp() async throws {
        let fixture = try await StoreFixture()
        let first = try await fixture.register(StoreFixture.diamond)
        guard case .registered(let id) = first else { Issue.record("first registration: \(first)"); return }
        #expect(try await fixture.register(StoreFixture.diamond) == .unchanged(id: id))
        // Formatting that does not change the definition is the same content.
        #expect(try await fixture.register(StoreFixture.diamond + "\n# a comment\n") == .unchanged(id: id))
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.templates") == 1)
        await fixture.pool.shutdown()
    }

    @Test func sameVersionWithOtherContentIsRefused() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.diamond)
        let changed = StoreFixture.diamond.replacingOccurrences(of: "max_attempts: 7", with: "max_attempts: 8")
        let error = await #expect(throws: StoreError.self) { try await fixture.register(changed) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("shop/diamond@1.0.0 is already registered with different content"))
        // A new version is fine, and `find` without a version picks the highest.
        try await fixture.register(changed.replacingOccurrences(of: "version: 1.0.0", with: "version: 1.10.0"))
        try await fixture.register(changed.replacingOccurrences(of: "version: 1.0.0", with: "version: 1.9.0"))
        let latest = try await fixture.registry.find(TemplateReference(parsing: "shop/diamond"))
        #expect(latest.template.version.description == "1.10.0")
        let pinned = try await fixture.registry.find(TemplateReference(parsing: "shop/diamond@1.0.0"))
        #expect(pinned.template.step(named: "join")?.retry.maxAttempts == 7)
        #expect(pinned.source == StoreFixture.diamond)
        let listed = try await fixture.registry.list().map(\.reference)
        #expect(listed == ["shop/diamond@1.0.0", "shop/diamond@1.9.0", "shop/diamond@1.10.0"])
        await fixture.pool.shutdown()
    }

    @Test func unknownTemplateSuggestsTheClosest() async throws {
        let fixture = try await StoreFixture()
        try await fixture.register(StoreFixture.diamond)
        let error = await #expect(throws: StoreError.self) { try await fixture.registry.find(TemplateReference(parsing: "shop/diamnd")) }
        #expect(error.map { "\($0)" } == "No template shop/diamnd is registered. Did you mean shop/diamond?")
        let version = await #expect(throws: StoreError.self) { try await fixture.registry.find(TemplateReference(parsing: "shop/diamond@2.0.0")) }
        #expect(version.map { "\($0)" } == "No template shop/diamond@2.0.0 is registered. Did you mean shop/diamond@1.0.0?")
        await fixture.pool.shutdown()
    }

    @Test(arguments: ["diamond", "shop/", "/x", "a/b@1.x", "a/b/c"])
    func malformedReferencesAreRefused(text: String) {
        #expect(throws: TemplateReferenceError.self) { try TemplateReference(parsing: text) }
    }
}
