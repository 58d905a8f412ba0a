import ArgumentParser
import Foundation
import OrcastraCommandLine
import OrcastraPostgres
import OrcastraStateMachines
import OrcastraTemplates

/// `orcastra prune`: deletes finished tasks now, optionally archiving them first.
struct PruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete finished tasks with everything they own, optionally archiving them first.",
        discussion: """
            Deletes finished tasks (complete, error, cancelled, resolved_manually) with their steps, \
            edges and results, in batches of at most --batch-rows rows per transaction, like \
            the orchestrators' retention chore. With --older-than, every finished task that \
            finished longer ago than that; without it, those whose retention ran out (the \
            template's `retention:`, else ORCASTRA_RETENTION_* or the defaults 7d complete and \
            cancelled, 30d error and resolved_manually). A task with a step still running is left \
            for later. Their transitions are not deleted row by row: afterwards the history's \
            weekly partitions in which no task is left are dropped whole (as the orchestrators do; \
            docs/retention.md, "Partitioned history").

            --archive DIR first writes what each batch deletes to DIR/orcastra-prune-<time>.jsonl.gz \
            (gzip; one JSON object per task with its steps and results, edges and transitions; \
            read it with `gzip -dc FILE`), in the batch's transaction: nothing is deleted that \
            was not written and flushed first.

            Examples:
              orcastra prune --older-than 30d --dry-run
              orcastra prune --older-than 90d --state error --template shop/checkout --archive /var/backups/orcastra
              orcastra prune --json
            """
    )

    @Option(help: ArgumentHelp("Only tasks that finished longer ago than this: e.g. 30d, 12h (default: by retention).", valueName: "period"))
    var olderThan: String?

    @Option(help: ArgumentHelp("Only tasks in this final state (repeatable): complete, error, cancelled, resolved_manually.", valueName: "state"))
    var state: [String] = []

    @Option(help: ArgumentHelp("Only tasks of this template: NAMESPACE/NAME (any version).", valueName: "template"))
    var template: String?

    @Flag(help: "Count what would be deleted, by state; delete nothing.")
    var dryRun = false

    @Option(help: ArgumentHelp("Write what is deleted to a gzipped JSON Lines file in this folder first (created if missing).", valueName: "dir"))
    var archive: String?

    @Option(help: ArgumentHelp("The most rows one transaction deletes, 1 to 10000.", valueName: "rows"))
    var batchRows = 10_000

    @Flag(help: "Print JSON for scripts: {\"dry_run\", \"tasks\", \"by_state\"} or {\"tasks\", \"rows\", \"bytes\", \"batches\", \"archive\", \"archive_bytes\", \"history_partitions_dropped\", \"history_bytes_dropped\"}.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    /// The filters, checked: each bad one named with how to fix it.
    struct Selection {
        var olderThanMilliseconds: Int64?
        var states: [String]?
        var namespace: String?
        var name: String?
        var defaultsJSON: String
    }

    func validate() throws {
        guard (1...10_000).contains(batchRows) else {
            throw ValidationError("--batch-rows must be between 1 and 10000 (rows per transaction), got \(batchRows).")
        }
        if dryRun && archive != nil { throw ValidationError("--archive writes what is deleted; --dry-run deletes nothing. Give one of them.") }
    }

    func selection() throws -> Selection {
        var olderThanMilliseconds: Int64?
        if let olderThan {
            do {
                guard case .after(let duration) = try RetentionPeriod(parsing: olderThan) else {
                    throw CLIFailure(message: "--older-than forever matches no task; give a period like 30d, or leave --older-than out to prune by retention.",
                                     exitCode: .usage)
                }
                olderThanMilliseconds = duration.milliseconds
            } catch let error as TemplateDurationError {
                throw CLIFailure(message: "--older-than \(error.message).", exitCode: .usage)
            }
        }
        let finals = RetentionPolicy.states
        for text in state where !finals.contains(text) {
            let known = TaskState(rawValue: text) != nil
            let why = known ? "\(text) tasks are not finished and are never pruned" : "'\(text)' is not a task state"
            throw CLIFailure(message: "--state \(text): \(why). Use \(finals.joined(separator: ", ")).", exitCode: .usage)
        }
        var namespace: String?, name: String?
        if let template {
            let parts = template.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, !parts[1].contains("@") else {
                throw CLIFailure(message: "--template '\(template)' is not NAMESPACE/NAME (no version: every version matches), e.g. --template shop/checkout.",
                                 exitCode: .usage)
            }
            (namespace, name) = (parts[0], parts[1])
        }
        let defaults = try RetentionOptions.defaults()
        return Selection(olderThanMilliseconds: olderThanMilliseconds, states: state.isEmpty ? nil : state,
                         namespace: namespace, name: name, defaultsJSON: try Self.json(defaults))
    }

    func run() async throws {
        let selection = try selection()
        let archiveDirectory = try archive.map(Self.prepareArchiveDirectory)
        let conninfo = try await database.conninfo()
        let connection = try await PostgresConnection.connect(conninfo)
        do {
            if dryRun {
                try await count(selection, on: connection)
            } else {
                try await prune(selection, archiveDirectory: archiveDirectory, on: connection)
            }
            await connection.close()
        } catch {
            await connection.close()
            throw error
        }
    }

    // MARK: - Dry run

    private func count(_ selection: Selection, on connection: PostgresConnection) async throws {
        let rows = try await connection.query("""
            SELECT t.state, count(*) AS n FROM orcastra.prunable_tasks(
                \(selection.olderThanMilliseconds)::bigint * interval '1 millisecond', \(selection.defaultsJSON)::jsonb,
                \(selection.states)::text[], \(selection.namespace)::text, \(selection.name)::text, 2147483647) p
            JOIN orcastra.tasks t ON t.id = p.task_id
            GROUP BY t.state ORDER BY t.state
            """)
        var byState: [String: Int] = [:]
        for row in rows { byState[try row.decode("state", as: String.self)] = try row.decode("n", as: Int.self) }
        let total = byState.values.reduce(0, +)
        if total == 0 { try await checkTemplateExists(selection, on: connection) }
        if json {
            try CLI.printJSON(DryRunOutput(dryRun: true, tasks: total, byState: byState))
            return
        }
        let states = byState.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        print("\(CLI.count(total, "finished task matches", "finished tasks match"))\(total > 0 ? " (\(states))" : ""); nothing was deleted (--dry-run).")
    }

    // MARK: - Pruning

    private func prune(_ selection: Selection, archiveDirectory: URL?, on connection: PostgresConnection) async throws {
        var archiveFile: ArchiveFile?
        if let archiveDirectory { archiveFile = try ArchiveFile(in: archiveDirectory) }
        var totals = PruneOutput()
        let batchRows = batchRows
        while true {
            let file = archiveFile
            let batch = try await connection.withTransaction { connection -> BatchResult in
                // Past candidates held by another pruner (an orchestrator's batch), as the chore does.
                let locked = try await connection.query("""
                    SELECT u.id::text AS id, b.candidates
                    FROM orcastra.take_pruning_batch(
                        \(selection.olderThanMilliseconds)::bigint * interval '1 millisecond', \(selection.defaultsJSON)::jsonb,
                        \(selection.states)::text[], \(selection.namespace)::text, \(selection.name)::text, \(batchRows)::int) b
                    LEFT JOIN LATERAL unnest(b.tasks) AS u(id) ON true
                    """)
                let ids = try locked.rows.compactMap { try $0.decode("id", as: String?.self) }
                let found = try locked.first?.decode("candidates", as: Int?.self) ?? 0
                if ids.isEmpty { return BatchResult(candidates: found) }
                var archived = 0
                if let file {
                    let lines = try await connection.query("SELECT orcastra.archive_tasks(\(ids)::uuid[]) AS line")
                    var text = ""
                    for row in lines { text += try row.decode("line", as: String.self) + "\n" }
                    archived = try file.append(text)
                }
                let deleted = try await connection.queryRow(
                    "SELECT deleted_rows, deleted_bytes FROM orcastra.delete_tasks(\(ids)::uuid[])")
                return BatchResult(candidates: found, tasks: ids.count, rows: try deleted.decode("deleted_rows", as: Int.self),
                                   bytes: try deleted.decode("deleted_bytes", as: Int.self), archivedBytes: archived)
            }
            if batch.tasks == 0 {
                if batch.candidates > 0, totals.tasks == 0 {
                    throw CLIFailure(message: "\(CLI.count(batch.candidates, "finished task matches", "finished tasks match")) but each is held by another transaction (an orchestrator pruning, or an operator); try again shortly.",
                                     exitCode: .conflict)
                }
                break
            }
            totals.tasks += batch.tasks
            totals.rows += batch.rows
            totals.bytes += batch.bytes
            totals.batches += 1
            totals.archiveBytes += batch.archivedBytes
            if !json && CLI.standardErrorIsTerminal {
                CLI.writeError("\r\(totals.tasks) tasks deleted…")
            }
        }
        if !json && CLI.standardErrorIsTerminal && totals.tasks > 0 { CLI.writeError("\n") }
        if totals.tasks == 0 { try await checkTemplateExists(selection, on: connection) }
        if totals.tasks > 0 {
            // The history of what was deleted goes with its week, once no task of the week is left.
            let history = try await connection.queryRow(
                "SELECT dropped, dropped_bytes FROM orcastra.maintain_history_partitions()")
            totals.historyPartitionsDropped = try history.decode("dropped", as: Int.self)
            totals.historyBytesDropped = try history.decode("dropped_bytes", as: Int.self)
        }
        if let archiveFile {
            try archiveFile.close()
            if totals.tasks == 0 { try? FileManager.default.removeItem(at: archiveFile.url) } else { totals.archive = archiveFile.url.path }
        }
        if json {
            try CLI.printJSON(totals)
            return
        }
        guard totals.tasks > 0 else {
            print("No finished task matches; nothing was deleted.")
            return
        }
        print("Deleted \(CLI.count(totals.tasks, "task", "tasks")) with everything they owned: \(totals.rows) rows, \(Self.bytes(totals.bytes)) of row data (reusable once vacuumed), in \(CLI.count(totals.batches, "transaction", "transactions")).")
        if totals.historyPartitionsDropped > 0 {
            print("Dropped \(CLI.count(totals.historyPartitionsDropped, "history partition", "history partitions")) no task is left in (\(Self.bytes(totals.historyBytesDropped)) freed at once).")
        } else {
            print("Their transitions stay until no task created in their week is left; then their week's history partition is dropped whole.")
        }
        if let path = totals.archive {
            print("Archived them first to \(path) (\(Self.bytes(totals.archiveBytes)) gzipped; read with gzip -dc).")
        }
    }

    /// No task matched a template filter: a typo is more likely than an empty history, so an unknown template is said.
    private func checkTemplateExists(_ selection: Selection, on connection: PostgresConnection) async throws {
        guard let namespace = selection.namespace, let name = selection.name else { return }
        let known = try await connection.queryRow("""
            SELECT EXISTS (SELECT 1 FROM orcastra.templates WHERE namespace = \(namespace) AND name = \(name)) AS known
            """).decode("known", as: Bool.self)
        if !known {
            throw CLIFailure(message: "--template \(namespace)/\(name): no such template is registered (`orcastra template list` shows them).",
                             exitCode: .notFound)
        }
    }

    // MARK: - Support

    static func prepareArchiveDirectory(_ path: String) throws -> URL {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw CLIFailure(message: "--archive \(path) is a file; give a folder to write the archive into.", exitCode: .usage)
            }
        } else {
            do {
                try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            } catch {
                throw CLIFailure(message: "--archive \(path): cannot create the folder (\(error.localizedDescription)).", exitCode: .failure)
            }
        }
        guard FileManager.default.isWritableFile(atPath: url.path) else {
            throw CLIFailure(message: "--archive \(path): the folder is not writable by this user; give another, or fix its permissions.", exitCode: .noPermission)
        }
        return url
    }

    static func json(_ defaults: RetentionPolicy) throws -> String {
        var complete = defaults
        for state in RetentionPolicy.states where complete[state] == nil { complete[state] = .forever }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(complete), as: UTF8.self)
    }

    static func bytes(_ count: Int) -> String {
        ByteCountFormatter.string(fromByteCount: Int64(count), countStyle: .binary)
    }

    struct BatchResult: Sendable {
        var candidates = 0
        var tasks = 0
        var rows = 0
        var bytes = 0
        var archivedBytes = 0
    }

    struct DryRunOutput: Encodable {
        var dryRun: Bool
        var tasks: Int
        var byState: [String: Int]
        enum CodingKeys: String, CodingKey { case dryRun = "dry_run", tasks, byState = "by_state" }
    }

    struct PruneOutput: Encodable {
        var tasks = 0
        var rows = 0
        var bytes = 0
        var batches = 0
        var archive: String?
        var archiveBytes = 0
        var historyPartitionsDropped = 0
        var historyBytesDropped = 0
        enum CodingKeys: String, CodingKey {
            case tasks, rows, bytes, batches, archive, archiveBytes = "archive_bytes"
            case historyPartitionsDropped = "history_partitions_dropped", historyBytesDropped = "history_bytes_dropped"
        }
    }
}
