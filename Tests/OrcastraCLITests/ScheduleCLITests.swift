import Foundation
import OrcastraTesting
import Testing

/// `orcastra schedule next` and `schedule validate` through the built binary: no database, the
/// documented output and exit codes.
@Suite(.timeLimit(.minutes(5))) struct ScheduleCLITests {
    let orcastra = CommandLineTool("orcastra")

    func temporaryFile(_ text: String) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("orcastra-schedules-\(UUID().uuidString).yaml")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    @Test func nextPrintsLocalAndUTCTimes() async throws {
        let result = try await orcastra.run(["schedule", "next", "*/15 9-17 * * mon-fri", "--timezone", "Europe/Berlin",
                                             "--from", "2027-03-27T00:00Z", "--count", "5"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.standardOutput == """
            2027-03-29 09:00:00 +02:00 (2027-03-29T07:00:00Z)
            2027-03-29 09:15:00 +02:00 (2027-03-29T07:15:00Z)
            2027-03-29 09:30:00 +02:00 (2027-03-29T07:30:00Z)
            2027-03-29 09:45:00 +02:00 (2027-03-29T07:45:00Z)
            2027-03-29 10:00:00 +02:00 (2027-03-29T08:00:00Z)

            """)
    }

    @Test func nextAcrossTheSpringGapAndJSON() async throws {
        // --from without an offset is in --timezone.
        let result = try await orcastra.run(["schedule", "next", "30 2 * * *", "--timezone", "Europe/Berlin", "--from", "2027-03-27T12:00",
                                             "--count", "2", "--json"])
        #expect(result.status == 0, "\(result.output)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect(object["timezone"] as? String == "Europe/Berlin")
        #expect(object["expression"] as? String == "30 2 * * *")
        #expect(object["fire_times"] as? [String] == ["2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z"])
        let utc = try await orcastra.run(["schedule", "next", "@daily", "--from", "2027-01-01T00:00Z", "--count", "1", "--json"])
        #expect(utc.standardOutput.contains("\"timezone\" : \"UTC\""), "\(utc.output)")
    }

    @Test(arguments: [
        (["61 * * * *"], "error: minute field \"61\" is out of range 0–59"),
        (["0 0 30 2 *"], "error: cron expression \"0 0 30 2 *\" never fires"),
        (["@daily", "--timezone", "Europe/Berln"], "error: --timezone: unknown time zone \"Europe/Berln\"; did you mean Europe/Berlin?"),
        (["@daily", "--from", "soon"], "error: --from 'soon' is not a time."),
    ])
    func nextRefusesBadInputWithSixtyFive(arguments: [String], message: String) async throws {
        let result = try await orcastra.run(["schedule", "next"] + arguments)
        #expect(result.status == 65, "\(result.output)")
        #expect(result.standardError.contains(message), "\(result.output)")
    }

    @Test func nextCountIsBounded() async throws {
        let result = try await orcastra.run(["schedule", "next", "@daily", "--count", "0"])
        #expect(result.status == 64, "\(result.output)")
    }

    @Test func validateReportsEveryFileAndExitCode() async throws {
        let good = try temporaryFile("""
            schedules:
              - {name: a, template: ns/a, cron: "@hourly"}
              - {name: b, template: ns/b@1.0.0, cron: "0 9 * * mon-fri", timezone: Europe/Berlin}
            """)
        let bad = try temporaryFile("""
            name: c
            template: ns/c
            cron: "0 24 * * *"
            timezon: UTC
            """)
        defer {
            try? FileManager.default.removeItem(atPath: good)
            try? FileManager.default.removeItem(atPath: bad)
        }
        let fine = try await orcastra.run(["schedule", "validate", good])
        #expect(fine.status == 0, "\(fine.output)")
        #expect(fine.standardOutput == "\(good): 2 schedules valid\n")

        let mixed = try await orcastra.run(["schedule", "validate", good, bad])
        #expect(mixed.status == 65, "\(mixed.output)")
        #expect(mixed.standardOutput.contains("\(good): 2 schedules valid"), "\(mixed.output)")
        #expect(mixed.standardError.contains("\(bad):3:7: cron: hour field \"24\" is out of range 0–23"), "\(mixed.output)")
        #expect(mixed.standardError.contains("\(bad):4:1: timezon: unknown key 'timezon' in a schedule; did you mean 'timezone'?"), "\(mixed.output)")

        let missing = try await orcastra.run(["schedule", "validate", "/nonexistent/s.yaml", bad])
        #expect(missing.status == 66, "\(missing.output)")
        #expect(missing.standardError.contains("/nonexistent/s.yaml: no such file or directory; check the path"), "\(missing.output)")
        #expect(missing.standardError.contains("\(bad):3:7"), "the other files are still checked: \(missing.output)")
    }
}
