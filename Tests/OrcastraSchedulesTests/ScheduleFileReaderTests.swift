import Foundation
import OrcastraSchedules
import OrcastraTemplates
import Testing

/// Schedule files: one schedule or `schedules:`, defaults, times in the schedule's zone, and
/// every problem reported at its line and column.
@Suite(.timeLimit(.minutes(5))) struct ScheduleFileReaderTests {
    static func issues(_ yaml: String) -> [String] {
        do {
            _ = try ScheduleFileReader.read(text: yaml, file: "s.yaml")
            return []
        } catch {
            return error.issues.map(\.description)
        }
    }

    @Test func oneScheduleWithDefaults() throws {
        let schedules = try ScheduleFileReader.read(text: """
            name: nightly-report
            template: reports/nightly
            cron: "30 2 * * *"
            """, file: "s.yaml")
        let schedule = try #require(schedules.first)
        #expect(schedules.count == 1)
        #expect(schedule.name == "nightly-report")
        #expect(schedule.template == "reports/nightly")
        #expect(schedule.cron == (try CronExpression(parsing: "30 2 * * *")))
        #expect(ScheduleTimeZone.name(of: schedule.timeZone) == "UTC")
        #expect(schedule.startAt == nil && schedule.endAt == nil)
        #expect(schedule.context == .object([:]))
        #expect(schedule.catchUp == .latest)
        #expect(schedule.overlap == .allow)
        #expect(schedule.priority == 0)
        #expect(!schedule.paused)
    }

    @Test func everyKeyOfSeveralSchedules() throws {
        let schedules = try ScheduleFileReader.read(text: """
            schedules:
              - name: berlin-morning
                template: reports/daily@1.2.0
                cron: "*/15 9-17 * * mon-fri"
                timezone: Europe/Berlin
                start: 2027-01-01T09:00          # unquoted, and in the schedule's zone
                end: "2027-12-31T18:00:00Z"
                context: {region: eu, limit: 5, tags: [a, b], ratio: 2.50, flag: true}
                catch_up: all
                overlap: cancel_previous
                priority: -5
                paused: true
              - name: hourly
                template: examples/linear
                cron: "@hourly"
                timezone: america/new_york
                start: 2027-01-01
            """, file: "s.yaml")
        #expect(schedules.map(\.name) == ["berlin-morning", "hourly"])
        let first = schedules[0]
        #expect(first.timeZone.identifier == "Europe/Berlin")
        #expect(first.startAt == Timestamp.parse("2027-01-01T08:00:00Z"))
        #expect(first.endAt == Timestamp.parse("2027-12-31T18:00:00Z"))
        #expect(first.context == ["region": "eu", "limit": 5, "tags": ["a", "b"], "ratio": .number(JSONNumber("2.50")!), "flag": true])
        #expect(first.catchUp == .all)
        #expect(first.overlap == .cancelPrevious)
        #expect(first.priority == -5)
        #expect(first.paused)
        #expect(schedules[1].timeZone.identifier == "America/New_York")
        #expect(schedules[1].startAt == Timestamp.parse("2027-01-01T05:00:00Z"), "a date alone is midnight in the schedule's zone")
    }

    @Test func everyProblemIsReportedWithItsPosition() {
        let found = Self.issues("""
            schedules:
              - name: Nightly Report
                template: reports
                cron: "61 * * * *"
                timezone: Europe/Berln
                catchup: all
              - name: b
                template: a/b@1.x
                cron: "0 0 30 2 *"
                start: 2027-05-01T00:00Z
                end: 2027-04-01T00:00Z
                overlap: skipp
                priority: 3000000000
                paused: yes please
                context: [1, 2]
              - name: b
                template: a/b
                cron: "@daily"
              - template: a/b
            """)
        #expect(found == [
            "s.yaml:2:11: schedules[0].name: schedule name 'Nightly Report' is invalid because it starts with 'N'; names must \(TemplateNames.rule)",
            "s.yaml:3:15: schedules[0].template: 'reports' is not a template reference; write it as NAMESPACE/NAME or NAMESPACE/NAME@VERSION, e.g. examples/linear@1.0.0",
            "s.yaml:4:11: schedules[0].cron: minute field \"61\" is out of range 0–59",
            "s.yaml:5:15: schedules[0].timezone: unknown time zone \"Europe/Berln\"; did you mean Europe/Berlin?",
            "s.yaml:6:5: schedules[0].catchup: unknown key 'catchup' in a schedule; did you mean 'catch_up'?",
            "s.yaml:8:15: schedules[1].template: 'a/b@1.x' is not a template reference: '1.x' is not a semantic version like 1.2.0",
            "s.yaml:9:11: schedules[1].cron: cron expression \"0 0 30 2 *\" never fires: no month it allows has the days of the month it names",
            "s.yaml:11:10: schedules[1].end: end 2027-04-01T00:00:00Z is not after start 2027-05-01T00:00:00Z; nothing would ever fire",
            "s.yaml:12:14: schedules[1].overlap: overlap 'skipp' is not one of allow, skip, cancel_previous; did you mean 'skip'? see docs/schedules.md",
            "s.yaml:13:15: schedules[1].priority: priority 3000000000 is out of range; it must be between -2147483648 and 2147483647",
            "s.yaml:14:13: schedules[1].paused: paused must be true or false, got the text 'yes please'",
            "s.yaml:15:14: schedules[1].context: context must be a mapping (key: value lines), got a list; write it like {region: eu}",
            "s.yaml:16:11: schedules[2].name: schedule name 'b' is already used by schedules[1] (line 7); names must be unique",
            "s.yaml:19:5: schedules[3]: a schedule is missing the required key 'name'; add a name like nightly-report",
            "s.yaml:19:5: schedules[3]: a schedule is missing the required key 'cron'; add a cron expression like \"30 2 * * *\"",
        ])
    }

    @Test(arguments: [
        ("", "s.yaml: the file is empty; a schedule needs at least name, template and cron"),
        ("- a\n- b", "s.yaml:1:1: a schedule file must be a mapping (one schedule, or `schedules:` with a list of them), got a list"),
        ("schedules: 3", "s.yaml:1:12: schedules: schedules must be a list of schedules (lines starting with '- '), got the number 3"),
        ("schedules: []", "s.yaml:1:12: schedules: schedules is an empty list; add at least one schedule or remove the file"),
        ("schedules: [{name: a, template: a/b, cron: '@daily'}]\nname: x", "s.yaml:2:1: name: unknown key 'name' next to 'schedules'; a file holds either one schedule or `schedules:` with a list"),
        ("name: a\ntemplate: a/b\ncron: '@daily'\nstart: 2027-03-28T02:30\ntimezone: Europe/Berlin",
         "s.yaml:4:8: start: start '2027-03-28T02:30' does not exist in Europe/Berlin (the clocks skip it for daylight saving); give a time outside the gap or with an offset"),
        ("name: a\ntemplate: a/b\ncron: '@daily'\nend: tomorrow",
         "s.yaml:4:6: end: end 'tomorrow' is not a time; write it like 2027-01-01T09:00:00Z, 2027-01-01T09:00:00+01:00, or 2027-01-01T09:00 (in the schedule's timezone)"),
        ("name: a\ntemplate: a/b\ncron:\n", "s.yaml:3:6: cron: cron is empty; give it a value or remove the key"),
        ("name: a\nname: b\ntemplate: a/b\ncron: '@daily'", "s.yaml:2:1: the key 'name' appears twice in the same mapping (first on line 1); remove or rename one of them"),
        ("name: [a\n", "s.yaml:2:1: YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence that starts at line 1, column 7); check the indentation and quoting here"),
    ])
    func fileLevelProblems(yaml: String, issue: String) {
        #expect(Self.issues(yaml) == [issue])
    }

    @Test func aMissingFileIsSaidSoAndMarked() throws {
        #expect(throws: ScheduleFileError.self) { try ScheduleFileReader.read(path: "/nonexistent/schedules.yaml") }
        do {
            _ = try ScheduleFileReader.read(path: "/nonexistent/schedules.yaml")
        } catch {
            #expect(error.isMissingFile)
            #expect(error.issues.map(\.description) == ["/nonexistent/schedules.yaml: no such file or directory; check the path"])
        }
    }

    @Test func aDefinitionBuiltInCodeChecksTheSameRules() throws {
        let cron = try CronExpression(parsing: "@daily")
        #expect(throws: ScheduleDefinitionError(key: "name", message: "schedule name '' is invalid because it is empty; names must \(TemplateNames.rule)")) {
            try ScheduleDefinition(name: "", template: "a/b", cron: cron)
        }
        #expect(throws: ScheduleDefinitionError(key: "end", message: "end 2027-01-01T00:00:00Z is not after start 2027-01-01T00:00:00Z; nothing would ever fire")) {
            try ScheduleDefinition(name: "a", template: "a/b", cron: cron, startAt: Timestamp.parse("2027-01-01T00:00Z"), endAt: Timestamp.parse("2027-01-01T00:00Z"))
        }
        #expect(throws: ScheduleDefinitionError.self) { try ScheduleDefinition(name: "a", template: "a/b", cron: cron, context: [1]) }
        #expect(throws: ScheduleDefinitionError.self) { try ScheduleDefinition(name: "a", template: "a/b", cron: cron, priority: Int(Int32.max) + 1) }
        #expect(throws: ScheduleDefinitionError.self) { try ScheduleDefinition(name: "a", template: "a/b", cron: CronExpression(parsing: "0 0 30 2 *")) }
        #expect(throws: Never.self) { try ScheduleDefinition(name: "a", template: "ns/name@1.2.0-beta.1", cron: cron) }
    }
}

/// Time zone names: exact, any case, and suggestions for a typo.
@Suite(.timeLimit(.minutes(5))) struct ScheduleTimeZoneTests {
    @Test(arguments: [("Europe/Berlin", "Europe/Berlin"), ("europe/berlin", "Europe/Berlin"), ("AMERICA/NEW_YORK", "America/New_York"),
                      ("Asia/Kolkata", "Asia/Kolkata"), ("UTC", "UTC"), ("utc", "UTC"), ("Etc/UTC", "UTC"), ("Australia/Lord_Howe", "Australia/Lord_Howe")])
    func knownNamesInAnyCase(name: String, identifier: String) throws {
        #expect(ScheduleTimeZone.name(of: try ScheduleTimeZone.named(name)) == identifier)
    }

    @Test(arguments: [
        ("Europe/Berln", "unknown time zone \"Europe/Berln\"; did you mean Europe/Berlin?"),
        ("Berlin", "unknown time zone \"Berlin\"; did you mean Europe/Berlin?"),
        ("America/Sao Paulo", "unknown time zone \"America/Sao Paulo\"; did you mean America/Sao_Paulo?"),
        ("Mars/Olympus_Mons", "unknown time zone \"Mars/Olympus_Mons\"; use an IANA name such as UTC, Europe/Berlin or America/New_York"),
        ("GMT+2", "unknown time zone \"GMT+2\"; use an IANA name such as UTC, Europe/Berlin or America/New_York"),
        ("+02:00", "unknown time zone \"+02:00\"; use an IANA name such as UTC, Europe/Berlin or America/New_York"),
    ])
    func unknownNamesSuggestCloseOnes(name: String, message: String) {
        #expect(throws: ScheduleTimeZoneError.self) { try ScheduleTimeZone.named(name) }
        do { _ = try ScheduleTimeZone.named(name) } catch { #expect(error.description == message) }
    }

    @Test func atMostThreeSuggestionsClosestFirst() {
        do { _ = try ScheduleTimeZone.named("Asia/Tokio") } catch {
            #expect(error.suggestions.first == "Asia/Tokyo" && error.suggestions.count <= 3, "\(error.suggestions)")
        }
        #expect(ScheduleTimeZoneError(name: "x", suggestions: ["A/B", "C/D", "E/F"]).description == "unknown time zone \"x\"; did you mean A/B, C/D or E/F?")
    }
}

/// RFC 3339 text both ways.
@Suite(.timeLimit(.minutes(5))) struct TimestampTests {
    @Test func formatsInUTCAndInAZone() throws {
        let date = try #require(Timestamp.parse("2027-03-29T07:00:00Z"))
        #expect(Timestamp.format(date) == "2027-03-29T07:00:00Z")
        let berlin = try ScheduleTimeZone.named("Europe/Berlin")
        #expect(Timestamp.formatLocal(date, in: berlin) == "2027-03-29 09:00:00 +02:00")
        #expect(Timestamp.formatWithOffset(date, in: berlin) == "2027-03-29T09:00:00+02:00")
        #expect(Timestamp.formatLocal(date, in: try ScheduleTimeZone.named("America/St_Johns")) == "2027-03-29 04:30:00 -02:30")
    }

    @Test(arguments: ["2027-03-28T02:30", "2027-02-30", "2027-01-01T25:00", "2027-01-01Tnonsense", "tomorrow"])
    func refusesTimesThatDoNotExist(text: String) throws {
        #expect(Timestamp.parse(text, timeZone: try ScheduleTimeZone.named("Europe/Berlin")) == nil)
    }
}
