import Foundation
import OrcastraPostgres
import OrcastraTesting
import Testing

/// `orcastra schedule …` against a database, as a user types it: create with located errors,
/// list/show/pause/resume/trigger/delete, and declarative apply.
@Suite(.timeLimit(.minutes(5))) struct ScheduleManagementCLITests {
    let orcastra = CommandLineTool("orcastra")

    static let template = """
        namespace: reports
        name: daily
        version: 1.0.0
        input_schema:
          type: object
          required: [format]
          properties:
            format: {type: string, enum: [pdf, csv]}
        steps:
          - {name: render, handler: orcastra.noop}
        """

    func run(_ url: String, _ arguments: [String]) async throws -> (status: Int32, output: String, stdout: String) {
        let result = try await orcastra.run(["schedule"] + arguments + ["--database-url", url])
        return (result.status, result.output, result.standardOutput)
    }

    func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    @Test func createRefusesBadInputByFieldAndWritesNothing() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.template)
        let url = cluster.url
        let base = ["create", "nightly", "--template", "reports/daily", "--context", #"{"format": "pdf"}"#]
        let cases: [(arguments: [String], status: Int32, says: String)] = [
            (["--cron", "61 2 * * *"], 65, #"minute field "61" is out of range 0–59"#),
            (["--cron", "0 2 * * *", "--timezone", "Europe/Berln"], 65, "did you mean Europe/Berlin?"),
            (["--cron", "0 2 * * *", "--start", "2027-02-01", "--end", "2027-01-01"], 65, "is not after start"),
            (["--cron", "0 2 * * *", "--start", "2027-02-30"], 65, "--start '2027-02-30' is not a time"),
            (["--cron", "0 2 * * *", "--catch-up", "some"], 65, "--catch-up 'some' is not a policy: use latest, all, none"),
        ]
        for (arguments, status, says) in cases {
            let result = try await run(url, base + arguments)
            #expect(result.status == status, "\(arguments): \(result.output)")
            #expect(result.output.contains(says), "\(arguments): \(result.output)")
        }
        var result = try await run(url, ["create", "nightly", "--template", "reports/dialy", "--cron", "@daily"])
        #expect(result.status == 66 && result.output.contains("Did you mean reports/daily?"), "\(result.output)")
        result = try await run(url, ["create", "nightly", "--template", "reports/daily", "--cron", "@daily", "--context", #"{"format": "doc"}"#])
        #expect(result.status == 65 && result.output.contains("context.format must be one of"), "\(result.output)")
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.schedules") == 0)
    }

    @Test func aScheduleIsCreatedListedPausedTriggeredAndDeleted() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.template)
        let url = cluster.url
        var result = try await run(url, ["create", "nightly", "--template", "reports/daily", "--cron", "0 2 * * *",
                                         "--timezone", "Europe/Berlin", "--context", #"{"format": "pdf"}"#, "--json"])
        #expect(result.status == 0, "\(result.output)")
        let created = json(result.stdout)
        #expect(created["namespace"] as? String == "reports" && created["timezone"] as? String == "Europe/Berlin")
        // 02:00 in Berlin is 01:00 or 00:00 UTC, whatever the season.
        let next = try #require(created["next_fire_at"] as? String)
        #expect(next.contains("T01:00:00") || next.contains("T00:00:00"), "\(next)")

        result = try await run(url, ["create", "nightly", "--template", "reports/daily", "--cron", "@daily", "--context", #"{"format": "csv"}"#])
        #expect(result.status == 75 && result.output.contains("exists already"), "\(result.output)")

        result = try await run(url, ["list"])
        #expect(result.status == 0 && result.stdout.contains("reports/nightly") && result.stdout.contains("Europe/Berlin"), "\(result.output)")

        result = try await run(url, ["pause", "nightly"])
        #expect(result.status == 0 && result.stdout.contains("Paused schedule reports/nightly"), "\(result.output)")
        result = try await run(url, ["show", "reports/nightly", "--json"])
        #expect(json(result.stdout)["paused"] as? Bool == true)

        // A paused schedule still runs when triggered by hand, with scheduled_for = now.
        result = try await run(url, ["trigger", "nightly", "--json"])
        #expect(result.status == 0, "\(result.output)")
        let task = try #require(UUID(uuidString: json(result.stdout)["task_id"] as? String ?? ""))
        let context = try await cluster.pool.queryRowAny("SELECT context::text AS c FROM orcastra.tasks WHERE id = \(task)").decode("c", as: String.self)
        #expect(context.contains(#""format": "pdf""#) && context.contains("scheduled_for"), "\(context)")

        result = try await run(url, ["resume", "nightly"])
        #expect(result.status == 0 && result.stdout.contains("Next occurrence"), "\(result.output)")
        result = try await run(url, ["show", "nightly"])
        #expect(result.stdout.contains(task.uuidString.lowercased()), "the last task is shown: \(result.output)")

        result = try await run(url, ["show", "nightli"])
        #expect(result.status == 66 && result.output.contains("Did you mean reports/nightly?"), "\(result.output)")
        result = try await run(url, ["delete", "reports/nightly"])
        #expect(result.status == 0)
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.schedules") == 0)
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.tasks WHERE id = \(task)") == 1, "its tasks stay")
    }

    @Test func applyCreatesUpdatesPrunesAndWritesNothingWhenAnythingIsWrong() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.template)
        let url = cluster.url
        let folder = NSTemporaryDirectory() + "schedules-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        func write(_ text: String) throws { try text.write(toFile: "\(folder)/reports.yaml", atomically: true, encoding: .utf8) }

        try write("""
            schedules:
              - {name: nightly, template: reports/daily, cron: "0 2 * * *", context: {format: pdf}}
              - {name: weekly, template: reports/daily, cron: "@weekly", context: {format: csv}}
            """)
        var result = try await run(url, ["apply", folder])
        #expect(result.status == 0 && result.stdout.contains("reports/nightly: created") && result.stdout.contains("2 created"), "\(result.output)")

        // A file with one bad schedule: nothing of it is applied, the error is located.
        try write("""
            schedules:
              - {name: nightly, template: reports/daily, cron: "0 3 * * *", context: {format: pdf}}
              - {name: broken, template: reports/daily, cron: "0 25 * * *", context: {format: pdf}}
            """)
        result = try await run(url, ["apply", folder])
        #expect(result.status == 65 && result.output.contains("reports.yaml:3") && result.output.contains("Nothing was applied"), "\(result.output)")
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.schedules WHERE cron = '0 3 * * *'") == 0)

        // A context its template refuses: refused before anything is written.
        try write("""
            schedules:
              - {name: nightly, template: reports/daily, cron: "0 3 * * *", context: {format: pdf}}
              - {name: other, template: reports/daily, cron: "0 3 * * *", context: {format: doc}}
            """)
        result = try await run(url, ["apply", folder])
        #expect(result.status == 65, "\(result.output)")
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.schedules WHERE cron = '0 3 * * *'") == 0)

        // A real change, and weekly removed from the file: --prune deletes it.
        try write("""
            schedules:
              - {name: nightly, template: reports/daily, cron: "0 3 * * *", context: {format: pdf}}
            """)
        result = try await run(url, ["apply", folder, "--prune", "--dry-run"])
        #expect(result.stdout.contains("reports/nightly: would be updated (cron)") && result.stdout.contains("reports/weekly: would be deleted"), "\(result.output)")
        #expect(try await cluster.count("SELECT count(*) FROM orcastra.schedules") == 2)
        result = try await run(url, ["apply", folder, "--prune", "--json"])
        let output = json(result.stdout)
        #expect((output["updated"] as? [String: [String]])?["reports/nightly"] == ["cron"], "\(result.output)")
        #expect(output["deleted"] as? [String] == ["reports/weekly"])
        result = try await run(url, ["apply", folder])
        #expect(result.stdout.contains("reports/nightly: unchanged"), "\(result.output)")
    }
}
