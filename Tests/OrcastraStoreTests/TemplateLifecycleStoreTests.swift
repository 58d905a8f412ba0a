import Foundation
import OrcastraPostgres
import OrcastraStateMachines
import OrcastraStore
import OrcastraTemplates
import Testing

/// Default versions and deprecation in the registry and the SQL functions behind them.
@Suite(.timeLimit(.minutes(5))) struct TemplateLifecycleStoreTests {
    /// A version written in the test, known to be valid.
    func version(_ text: String) -> SemanticVersion { try! SemanticVersion(parsing: text) }

    @Test func theRuleTakesTheDefaultElseTheHighestLiveRelease() throws {
        let versions = [("1.9.0", false), ("1.10.0", true), ("1.2.0", false), ("2.0.0-rc.1", false)]
            .map { RegisteredVersion(version($0.0), deprecated: $0.1) }
        #expect(TemplateVersionRule.unpinned(among: versions, defaultVersion: nil) == version("1.9.0"))
        #expect(TemplateVersionRule.unpinned(among: versions, defaultVersion: version("2.0.0-rc.1")) == version("2.0.0-rc.1"))
        #expect(TemplateVersionRule.unpinned(among: versions.filter { !$0.version.prerelease.isEmpty || $0.isDeprecated },
                                             defaultVersion: nil) == nil)
        #expect(TemplateVersionRule.unpinned(among: [], defaultVersion: nil) == nil)
    }

    @Test func findAndListSayWhatIsDefaultAndDeprecated() async throws {
        let fixture = try await StoreFixture()
        for version in ["1.0.0", "1.1.0", "1.2.0"] {
            try await fixture.register(StoreFixture.diamond.replacingOccurrences(of: "version: 1.0.0", with: "version: \(version)"))
        }
        let shop = TemplateReference(namespace: "shop", name: "diamond")
        let deprecation = try await fixture.registry.deprecate(try TemplateReference(parsing: "shop/diamond@1.2.0"), reason: "slow")
        #expect(deprecation.changed && deprecation.reason == "slow" && deprecation.deprecatedAt != nil)
        #expect(deprecation.unpinnedVersion == version("1.1.0"))
        #expect(try await fixture.registry.find(shop).template.version == version("1.1.0"))
        let pinned = try await fixture.registry.find(try TemplateReference(parsing: "shop/diamond@1.2.0"))
        #expect(pinned.deprecatedAt == deprecation.deprecatedAt && pinned.deprecationReason == "slow" && !pinned.isUnpinnedChoice)

        let set = try await fixture.registry.setDefault(namespace: "shop", name: "diamond", version: version("1.0.0"))
        #expect(set.previousDefault == nil && set.defaultVersion == version("1.0.0") && set.unpinnedVersion == set.defaultVersion)
        let found = try await fixture.registry.find(shop)
        #expect(found.template.version == version("1.0.0") && found.isDefault && found.isUnpinnedChoice)
        let listed = try await fixture.registry.list()
        #expect(listed.map(\.version) == ["1.0.0", "1.1.0", "1.2.0"])
        #expect(listed.map(\.isDefault) == [true, false, false])
        #expect(listed.map(\.isUnpinnedChoice) == [true, false, false])
        #expect(listed.map(\.isDeprecated) == [false, false, true])

        // The refusals, as errors that name the version and the way out.
        let defaulted = await #expect(throws: StoreError.self) {
            try await fixture.registry.setDefault(namespace: "shop", name: "diamond", version: version("1.2.0"))
        }
        #expect(defaulted.map { "\($0)" }?.hasPrefix("shop/diamond@1.2.0 is deprecated, and a deprecated version cannot be the default.") == true)
        let deprecated = await #expect(throws: StoreError.self) {
            try await fixture.registry.deprecate(try TemplateReference(parsing: "shop/diamond@1.0.0"), reason: nil)
        }
        #expect(deprecated.map { "\($0)" }?.hasPrefix("shop/diamond@1.0.0 is the default version") == true)
        let unknown = await #expect(throws: StoreError.self) {
            try await fixture.registry.setDefault(namespace: "shop", name: "diamond", version: version("9.0.0"))
        }
        #expect(unknown.map { "\($0)" }?.hasPrefix("No template shop/diamond@9.0.0 is registered.") == true)
        await #expect(throws: TemplateReferenceError.self) { try await fixture.registry.deprecate(shop, reason: nil) }
        // Nothing of the refused calls stayed.
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.templates WHERE deprecated_at IS NOT NULL") == 1)
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.template_defaults WHERE version = '1.0.0'") == 1)

        // Lifting and clearing.
        let lifted = try await fixture.registry.undeprecate(try TemplateReference(parsing: "shop/diamond@1.2.0"))
        #expect(lifted.changed && lifted.deprecatedAt == nil)
        #expect(try await fixture.registry.undeprecate(try TemplateReference(parsing: "shop/diamond@1.2.0")).changed == false)
        let cleared = try await fixture.registry.setDefault(namespace: "shop", name: "diamond", version: nil)
        #expect(cleared.previousDefault == version("1.0.0") && cleared.defaultVersion == nil)
        #expect(cleared.unpinnedVersion == version("1.2.0"))
        await fixture.pool.shutdown()
    }

    /// A default is never a deprecated version, also when both are asked for at once: each
    /// function takes the version's row lock before it looks at the other side.
    @Test func aDefaultIsNeverDeprecatedUnderRaces() async throws {
        let fixture = try await StoreFixture()
        for version in ["1.0.0", "1.1.0"] {
            try await fixture.register(StoreFixture.diamond.replacingOccurrences(of: "version: 1.0.0", with: "version: \(version)"))
        }
        let pools = (0..<2).map { _ in PostgresPool(conninfo: fixture.pool.conninfo, maximumConnections: 1) }
        defer { Task { for pool in pools { await pool.shutdown() } } }
        for round in 0..<30 {
            let version = round % 2 == 0 ? "1.0.0" : "1.1.0"
            _ = try await fixture.pool.query("SELECT orcastra.set_default_version('shop', 'diamond', NULL)")
            _ = try await fixture.pool.query("SELECT orcastra.undeprecate_template('shop', 'diamond', \(version))")
            async let defaulted = try? pools[0].query("SELECT orcastra.set_default_version('shop', 'diamond', \(version))")
            async let deprecated = try? pools[1].query("SELECT * FROM orcastra.deprecate_template('shop', 'diamond', \(version))")
            let outcomes = (await defaulted != nil, await deprecated != nil)
            #expect(outcomes.0 != outcomes.1, "round \(round): exactly one of the two succeeds, got \(outcomes)")
            #expect(try await fixture.count("""
                SELECT count(*) FROM orcastra.template_defaults d
                JOIN orcastra.templates t ON (t.namespace, t.name, t.version) = (d.namespace, d.name, d.version)
                WHERE t.deprecated_at IS NOT NULL
                """) == 0, "round \(round)")
        }
        await fixture.pool.shutdown()
    }
}
