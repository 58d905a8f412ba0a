import Foundation
import OrcastraPostgres
import OrcastraStateMachines
import Testing

/// The names and codes in `ProtocolConstants.swift` are read back from the SQL they mirror, in a
/// migrated database, so a change on one side without the other fails here.
@Suite(.timeLimit(.minutes(5))) struct ProtocolConstantsTests {
    /// The body of `orcastra.<name>` (every overload, concatenated).
    static func source(_ pool: PostgresPool, _ name: String) async throws -> String {
        let rows = try await pool.query("""
            SELECT string_agg(prosrc, E'\n') AS source FROM pg_proc
            WHERE pronamespace = 'orcastra'::regnamespace AND proname = \(name)
            """)
        return try rows.first?.decode("source", as: String?.self) ?? ""
    }

    /// Every match of `pattern`'s first group in the bodies of all functions in schema orcastra.
    static func matches(_ pool: PostgresPool, _ pattern: String) async throws -> Set<String> {
        let rows = try await pool.query("""
            SELECT DISTINCT (regexp_matches(prosrc, \(pattern), 'g'))[1] AS match FROM pg_proc
            WHERE pronamespace = 'orcastra'::regnamespace
            """)
        return Set(try rows.rows.map { try $0.decode("match", as: String.self) })
    }

    @Test func channelsMatchTheSQL() async throws {
        let fixture = try await StoreFixture()
        // Both directions: every literal channel SQL notifies is a Swift constant, and each constant is notified.
        let literal = try await Self.matches(fixture.pool, #"(?:pg_notify|post_notification)\(\s*'([^']*)'"#)
        #expect(literal == [ProtocolChannel.orchestrator, ProtocolChannel.taskEvents])
        #expect(try await Self.source(fixture.pool, "audit_task_transition").contains("post_notification('\(ProtocolChannel.taskEvents)'"))
        #expect(try await Self.source(fixture.pool, "report_steps").contains("post_notification('\(ProtocolChannel.orchestrator)'"))
        // Namespace channels: the prefix, by calling the function that builds them.
        let channel = try await fixture.pool.query("SELECT orcastra.namespace_channel('shop') AS channel").first!
        #expect(try channel.decode("channel", as: String.self) == ProtocolChannel.namespacePrefix + "shop")
        await fixture.pool.shutdown()
    }

    @Test func reportOutcomesMatchTheSQL() async throws {
        let fixture = try await StoreFixture()
        let source = try await Self.source(fixture.pool, "report_steps")
        // The outcomes report_steps writes as literals…
        for outcome in [ReportOutcome.completed, .ignored, .leaseLost] {
            #expect(source.contains("THEN '\(outcome.rawValue)'") || source.contains("ELSE '\(outcome.rawValue)'"), "\(outcome.rawValue)")
        }
        // …and those it passes through from the failed step's new state, which must be step states.
        #expect(source.contains("WHEN i.id = ANY (v_failed) THEN s.state"))
        for outcome in [ReportOutcome.waitingForRetry, .error] {
            #expect(StepState(rawValue: outcome.rawValue) != nil, "\(outcome.rawValue)")
            #expect(source.contains("'\(outcome.rawValue)'"), "\(outcome.rawValue)")
        }
        // Both directions: the CASE that names the outcome has no literal Swift lacks.
        let start = try #require(source.range(of: "CASE WHEN i.id = ANY (v_done)"))
        let end = try #require(source.range(of: "END", range: start.upperBound..<source.endIndex))
        let literals = Set(source[start.lowerBound..<end.upperBound].split(separator: "'", omittingEmptySubsequences: false)
            .enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) })
        #expect(literals.isSubset(of: Set(ReportOutcome.allCases.map(\.rawValue))), "\(literals)")
        await fixture.pool.shutdown()
    }

    @Test func errorCodesMatchTheSQL() async throws {
        let fixture = try await StoreFixture()
        // Both directions: the OR… codes raised anywhere in schema orcastra are exactly Swift's.
        let raised = try await Self.matches(fixture.pool, #"ERRCODE\s*=\s*'(OR[0-9A-Z]{3})'"#)
        #expect(raised == Set(OrcastraSQLState.allCases.map(\.rawValue)))
        #expect(try await Self.source(fixture.pool, "audit_step_transition")
            .contains("ERRCODE = '\(OrcastraSQLState.illegalTransition.rawValue)'"))
        #expect(try await Self.source(fixture.pool, "retry_step")
            .contains("ERRCODE = '\(OrcastraSQLState.refusedOperatorAction.rawValue)'"))
        #expect(try await Self.source(fixture.pool, "create_task")
            .contains("ERRCODE = '\(OrcastraSQLState.templateNotFound.rawValue)'"))
        #expect(try await Self.source(fixture.pool, "require_namespace")
            .contains("ERRCODE = '\(OrcastraSQLState.namespaceNotGranted.rawValue)'"))
        await fixture.pool.shutdown()
    }
}
