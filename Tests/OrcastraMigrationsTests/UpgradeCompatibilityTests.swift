import Foundation
import Testing

/// Old workers and clients keep working after `orcastra migrate` (docs/operations.md, "Upgrades")
/// only while no SQL file takes away what they call. Numbered migrations may not drop or rename
/// anything; repeatable files may drop a function signature only once no supported release calls
/// it. The drops below predate the first release; a new one fails here until it is listed, with
/// the release that stopped calling it.
@Suite(.timeLimit(.minutes(5))) struct UpgradeCompatibilityTests {
    static let allowedDrops: Set<String> = [
        "DROP FUNCTION IF EXISTS orcastra.create_task(bigint, jsonb, text, integer, timestamptz)",  // before 0.1.0
        "DROP FUNCTION IF EXISTS orcastra.create_task_by_name(text, text, text, jsonb, text, integer, timestamptz)",  // before 0.1.0
        "DROP FUNCTION IF EXISTS orcastra.fail_steps(bigint[], uuid[], text[], integer[])",  // before 0.1.0
        "DROP FUNCTION IF EXISTS orcastra.cancel_orphaned(bigint[], uuid[])",  // before 0.1.0
        // Signatures replaced by ones with new trailing parameters that have defaults (allow_deprecated,
        // then traceparent): a call written for the old one resolves to the new one unchanged.
        "DROP FUNCTION IF EXISTS orcastra.create_task(bigint, jsonb, text, integer, timestamptz, boolean)",
        "DROP FUNCTION IF EXISTS orcastra.create_task_by_name(text, text, text, jsonb, text, integer, timestamptz, boolean)",
        "DROP FUNCTION IF EXISTS orcastra.create_tasks(bigint[], jsonb[], text[], integer[])",
        // ... then p_parent_step (sub-workflows, issue 19), with a NULL default: the same.
        "DROP FUNCTION IF EXISTS orcastra.create_task(bigint, jsonb, text, integer, timestamptz, boolean, text)",
        // The same arguments, new result columns after the old ones (traceparent; item, item_index):
        // PostgreSQL cannot change a result type in place. Callers that name columns, or read the
        // first ten by position, are unaffected.
        "DROP FUNCTION IF EXISTS orcastra.claim_steps(text, text, integer, integer)",
    ]

    /// Numbered migrations allowed to drop or rename, each with why running older binaries are not
    /// hurt (for example: a table rebuilt as a partitioned one under its old name, with the
    /// functions that use it re-applied in the same `orcastra migrate`).
    static let allowedNumbered: [String: String] = [
        // Drops tasks_pending_run_at and creates it again at once, under the same name, with a
        // narrower predicate (not waiting_for_slot): no binary names an index.
        "0010_limits_and_deadlines.sql": "index rebuilt under its own name in the same migration",
        // Drops the six partial indexes of steps that named `state` (so that its updates can be HOT);
        // the tables it adds serve their queries. No binary names an index: old functions still
        // running before the repeatable files are re-applied read steps without them (slower, still
        // right), and functions/live_steps.sql then fills the new tables under a lock on steps.
        "0012_live_step_tables.sql": "partial indexes of steps replaced by the live-step tables; no binary names an index",
        // Renames task_transitions and step_transitions aside, creates them again under their own
        // names as partitioned tables with the same columns plus task_created_at (defaulting to
        // now(), right for what an older create_task writes), copies every row and drops the old
        // tables, in one transaction; the functions that write them are re-applied in the same
        // `orcastra migrate` (HistoryUpgradeTests).
        "0014_partitioned_history.sql": "history tables rebuilt as partitioned ones under their own names in the same migration",
        // Replaces step_transitions' (step_id, id) and (task_id) indexes by one (task_id, step_id, id):
        // no binary names an index, and an older binary's queries by task or by step still find one.
        "0016_step_history_index.sql": "two history indexes replaced by one covering both in the same migration",
    ]

    var migrations: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Migrations")
    }

    func statements(in folder: URL) throws -> [(file: String, statement: String)] {
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".sql") }.sorted()
        return try files.flatMap { file in
            // Comments out first (a comment may hold a ';'), then one statement per ';'.
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
                .split(separator: "\n", omittingEmptySubsequences: false)
                .map { line in line.range(of: "--").map { line[..<$0.lowerBound] } ?? line }
                .joined(separator: " ")
            return text.split(separator: ";").map { (file, $0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
    }

    @Test func numberedMigrationsDropAndRenameNothing() throws {
        let pattern = /(?i)\b(DROP\s+(TABLE|COLUMN|FUNCTION|VIEW|TYPE|SCHEMA|INDEX)|RENAME\s+(TO|COLUMN))\b/
        let offending = try statements(in: migrations).filter { $0.statement.contains(pattern) && Self.allowedNumbered[$0.file] == nil }
        #expect(offending.isEmpty, "a numbered migration drops or renames what a running older worker or client may use: \(offending); if older binaries are unaffected, list the file in allowedNumbered with why (docs/operations.md, Upgrades)")
    }

    @Test func repeatableFilesDropOnlyRetiredSignatures() throws {
        let drops = try statements(in: migrations.appendingPathComponent("functions"))
            .filter { $0.statement.uppercased().hasPrefix("DROP FUNCTION") }
        #expect(drops.count >= Self.allowedDrops.count, "the check reads the files: \(drops)")
        for drop in drops {
            let normalized = drop.statement.replacing(/\s+/, with: " ")
            #expect(Self.allowedDrops.contains(normalized),
                    "\(drop.file): `\(normalized)` removes a signature older workers or clients may call; keep it until no supported release calls it, then list it in UpgradeCompatibilityTests (docs/operations.md, Upgrades)")
        }
    }
}
