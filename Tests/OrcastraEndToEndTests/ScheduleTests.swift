import Foundation
import OrcastraClient
@testable import OrcastraOrchestrator
import OrcastraPostgres
import OrcastraSchedules
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

/// Schedules fired by real orchestrator processes: exactly once per occurrence with several of
/// them, through kill -9 and an outage, and woken at once for a new schedule.
extension EndToEndTests {
@Suite(.timeLimit(.minutes(5))) struct ScheduleTests {
    static let template = """
        namespace: e2e
        name: tick
        version: 1.0.0
        steps:
          - {name: work, handler: orcastra.noop}
        """

    func everySecond(_ cluster: ProcessCluster, name: String = "every-second", catchUp: CatchUpPolicy = .all) async throws -> ScheduleInfo {
        let client = OrcastraClient(pool: cluster.pool)
        return try await client.createSchedule(ScheduleDefinition(
            name: name, template: "e2e/tick", cron: CronExpression(parsing: "* * * * * *"), catchUp: catchUp))
    }

    /// The occurrences the schedule made tasks for, oldest first, and how many tasks there are.
    func occurrences(_ cluster: ProcessCluster, _ schedule: ScheduleInfo) async throws -> (times: [Date], tasks: Int) {
        let rows = try await cluster.pool.query("""
            SELECT (context->>'scheduled_for')::timestamptz AS at FROM orcastra.tasks
            WHERE idempotency_key LIKE \("schedule:\(schedule.id):%") ORDER BY 1
            """).rows
        return (try rows.map { try $0.decode("at", as: Date.self) }, rows.count)
    }

    /// Whole seconds from the first to the last, none missing, none twice.
    func gaps(_ times: [Date]) -> [String] {
        zip(times, times.dropFirst()).compactMap { earlier, later in
            let step = later.timeIntervalSince(earlier)
            return abs(step - 1) < 0.001 ? nil : "\(earlier) → \(later) (\(step) s)"
        }
    }

    @Test func threeOrchestratorsFireEverySecondOnceThroughKillAndOutage() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.template)
        let created = Date()
        let schedule = try await everySecond(cluster)
        let orchestrators = try (0..<3).map { _ in try cluster.orchestrator(["--poll-interval", "1s"]) }

        // 20 s with three orchestrators; one is killed with SIGKILL half-way.
        try await Task.sleep(for: .seconds(10))
        orchestrators[0].send(SIGKILL)
        try await Task.sleep(for: .seconds(10))
        var (times, tasks) = try await occurrences(cluster, schedule)
        #expect(tasks == Set(times).count, "an occurrence made two tasks: \(times)")
        #expect(gaps(times).isEmpty, "missed or doubled: \(gaps(times))\n\(cluster.logs)")
        #expect(times.count >= 18, "only \(times.count) tasks in 20 s")
        if let first = times.first { #expect(first.timeIntervalSince(created) < 2, "the first occurrence came late: \(first)") }

        // All orchestrators stop for 10 s; one comes back and catches up every missed second (catch_up: all).
        for orchestrator in orchestrators.dropFirst() { orchestrator.send(SIGTERM) }
        for orchestrator in orchestrators.dropFirst() { _ = await orchestrator.wait(timeout: .seconds(10)) }
        let stoppedAt = Date()
        let atStop = try await occurrences(cluster, schedule).tasks
        try await Task.sleep(for: .seconds(10))
        #expect(try await occurrences(cluster, schedule).tasks == atStop, "tasks were made while no orchestrator ran")
        let restarted = Date()
        try cluster.orchestrator(["--poll-interval", "1s"])
        let caughtUp = await waitUntil(within: .seconds(15)) {
            (try await occurrences(cluster, schedule).times.last ?? .distantPast) >= restarted
        }
        #expect(caughtUp, "\(cluster.logs)")
        (times, tasks) = try await occurrences(cluster, schedule)
        #expect(tasks == Set(times).count, "an occurrence made two tasks")
        #expect(gaps(times).isEmpty, "the outage left gaps: \(gaps(times))\n\(cluster.logs)")
        #expect(times.contains { $0 > stoppedAt.addingTimeInterval(2) && $0 < restarted.addingTimeInterval(-2) },
                "no occurrence of the outage was caught up")
    }

    @Test func aNewScheduleWakesAnOrchestratorThatPollsRarely() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        try await cluster.register(Self.template)
        try cluster.orchestrator(["--poll-interval", "60s"])
        try await Task.sleep(for: .seconds(1))   // it has started and found nothing to do
        let schedule = try await everySecond(cluster)
        let fired = await waitUntil(within: .seconds(10)) { try await occurrences(cluster, schedule).tasks >= 3 }
        #expect(fired, "\(cluster.logs)")
        // Each task was made soon after its occurrence (both times from the database).
        let late = try await cluster.count("""
            SELECT count(*) FROM orcastra.tasks
            WHERE idempotency_key LIKE \("schedule:\(schedule.id):%")
              AND created_at > (context->>'scheduled_for')::timestamptz + interval '500 milliseconds'
            """)
        #expect(late == 0, "\(cluster.logs)")
    }
}
}

/// The policies (catch-up, overlap, start and end, a bad context at fire time), one orchestrator
/// round at a time, in this process.
@Suite(.timeLimit(.minutes(5))) struct SchedulePolicyTests {
    static let schemaTemplate = """
        namespace: e2e
        name: typed
        version: 1.0.0
        input_schema:
          type: object
          required: [region]
          properties:
            region: {type: string}
        steps:
          - {name: work, handler: orcastra.noop}
        """

    final class Fixture: Sendable {
        let database: String
        let pool: PostgresPool
        let client: OrcastraClient
        let orchestrator: Orchestrator

        init() async throws {
            database = try await TestDatabases.shared.makeDatabase()
            pool = PostgresPool(conninfo: database, maximumConnections: 2)
            client = OrcastraClient(pool: pool)
            orchestrator = Orchestrator(configuration: OrchestratorConfiguration(conninfo: database))
            for yaml in [EndToEndTests.ScheduleTests.template, SchedulePolicyTests.schemaTemplate] {
                let template = try TemplateParser.parse(yaml: yaml, file: "e2e.yaml")
                _ = try await TemplateRegistry(pool: pool).register(LoadedTemplate(file: "e2e.yaml", source: yaml, template: template))
            }
        }

        func schedule(_ name: String, cron: String, template: String = "e2e/tick", context: JSONValue = .object([:]),
                      catchUp: CatchUpPolicy = .latest, overlap: OverlapPolicy = .allow, end: Date? = nil) async throws -> ScheduleInfo {
            try await client.createSchedule(ScheduleDefinition(
                name: name, template: template, cron: CronExpression(parsing: cron), endAt: end, context: context,
                catchUp: catchUp, overlap: overlap))
        }

        /// Pretends the schedule's next occurrence was `at` (as if no orchestrator ran since).
        func due(_ schedule: ScheduleInfo, at: Date) async throws {
            try await pool.query("UPDATE orcastra.schedules SET next_fire_at = \(at) WHERE id = \(schedule.id)")
        }

        func occurrences(_ schedule: ScheduleInfo) async throws -> [Date] {
            try await pool.query("""
                SELECT (context->>'scheduled_for')::timestamptz AS at FROM orcastra.tasks
                WHERE idempotency_key LIKE \("schedule:\(schedule.id):%") ORDER BY 1
                """).rows.map { try $0.decode("at", as: Date.self) }
        }

        func now() async throws -> Date { try await pool.queryRowAny("SELECT now() AS now").decode("now") }

        func count(_ sql: SQL) async throws -> Int { try await pool.queryRowAny(sql).decode(at: 0, as: Int.self) }

        func stored(_ schedule: ScheduleInfo) async throws -> ScheduleInfo { try await client.schedule(ScheduleName(schedule.qualifiedName)) }

        func close() async { await pool.shutdown() }
    }

    /// A cron expression that matches `instant` (UTC) and nothing else for a year.
    static func onlyAt(_ instant: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.second, .minute, .hour, .day, .month], from: instant)
        return "\(c.second!) \(c.minute!) \(c.hour!) \(c.day!) \(c.month!) *"
    }

    static func wholeSecond(_ date: Date) -> Date { Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down)) }

    @Test func catchUpLatestAllAndNoneAfterAnOutage() async throws {
        let fixture = try await Fixture()
        let now = Self.wholeSecond(try await fixture.now())
        let latest = try await fixture.schedule("latest", cron: "* * * * * *", catchUp: .latest)
        let all = try await fixture.schedule("all", cron: "* * * * * *", catchUp: .all)
        try await fixture.due(latest, at: now.addingTimeInterval(-10))
        try await fixture.due(all, at: now.addingTimeInterval(-10))
        // An occurrence 5 minutes ago, and none since: missed for good with catch_up none, run late with latest.
        let old = now.addingTimeInterval(-300)
        let none = try await fixture.schedule("none", cron: Self.onlyAt(old), catchUp: .none)
        let lateOne = try await fixture.schedule("late-one", cron: Self.onlyAt(old), catchUp: .latest)
        try await fixture.due(none, at: old)
        try await fixture.due(lateOne, at: old)

        try await fixture.orchestrator.tick()

        let latestTimes = try await fixture.occurrences(latest)
        #expect(latestTimes.count == 1)
        #expect(latestTimes.first.map { $0 >= now } == true, "latest fired \(latestTimes), not the most recent second")
        let allTimes = try await fixture.occurrences(all)
        #expect(allTimes.count >= 11 && allTimes.first == now.addingTimeInterval(-10), "\(allTimes)")
        #expect(Set(allTimes).count == allTimes.count)
        #expect(try await fixture.occurrences(none).isEmpty)
        #expect(try await fixture.occurrences(lateOne) == [old])
        for schedule in [latest, all, none, lateOne] {
            let stored = try await fixture.stored(schedule)
            #expect(stored.nextFireAt.map { $0 > now } == true, "\(stored.name) next \(String(describing: stored.nextFireAt))")
        }
        // A second round finds nothing more to fire.
        try await fixture.orchestrator.tick()
        #expect(try await fixture.occurrences(lateOne) == [old])
        await fixture.close()
    }

    @Test func overlapSkipAndCancelPrevious() async throws {
        let fixture = try await Fixture()
        let skip = try await fixture.schedule("skip", cron: "* * * * * *", overlap: .skip)
        let cancel = try await fixture.schedule("cancel", cron: "* * * * * *", overlap: .cancelPrevious)
        // No worker: each task stays unfinished.
        let now = Self.wholeSecond(try await fixture.now())
        try await fixture.due(skip, at: now)
        try await fixture.due(cancel, at: now)
        try await fixture.orchestrator.tick()
        let firstCancel = try await fixture.stored(cancel).lastTaskID
        // The next second's occurrence, while the first tasks are still unfinished.
        try await Task.sleep(for: .milliseconds(1200))
        try await fixture.orchestrator.tick()

        let skipped = try await fixture.stored(skip)
        #expect(try await fixture.occurrences(skip).count == 1)
        #expect(skipped.lastOutcome == "skipped" && skipped.skippedCount == 1, "\(skipped)")
        let cancelled = try await fixture.stored(cancel)
        #expect(try await fixture.occurrences(cancel).count == 2)
        #expect(cancelled.lastTaskID != firstCancel)
        let previousState = try await fixture.pool.queryRowAny("SELECT state FROM orcastra.tasks WHERE id = \(UUID(uuidString: firstCancel!)!)")
            .decode("state", as: String.self)
        #expect(previousState == "cancelled")
        await fixture.close()
    }

    /// Several missed occurrences at once (catch_up all): skip makes the first one's task only;
    /// cancel_previous makes the last one's only (the earlier ones are superseded, never created).
    @Test func overlapWithinOneCatchUp() async throws {
        let fixture = try await Fixture()
        let skip = try await fixture.schedule("skip-all", cron: "* * * * * *", catchUp: .all, overlap: .skip)
        let cancel = try await fixture.schedule("cancel-all", cron: "* * * * * *", catchUp: .all, overlap: .cancelPrevious)
        let now = Self.wholeSecond(try await fixture.now())
        try await fixture.due(skip, at: now.addingTimeInterval(-3))
        try await fixture.due(cancel, at: now.addingTimeInterval(-3))
        try await fixture.orchestrator.tick()
        #expect(try await fixture.occurrences(skip) == [now.addingTimeInterval(-3)])
        let skipped = try await fixture.stored(skip)
        #expect(skipped.skippedCount >= 3 && skipped.firedCount == 1, "\(skipped)")
        let made = try await fixture.occurrences(cancel)
        #expect(made.count == 1 && made[0] >= now, "\(made)")
        #expect(try await fixture.count("SELECT count(*) FROM orcastra.tasks WHERE state = 'cancelled'") == 0)
        await fixture.close()
    }

    @Test func nothingFiresAfterTheEnd() async throws {
        let fixture = try await Fixture()
        let now = Self.wholeSecond(try await fixture.now())
        let end = now.addingTimeInterval(-5)
        let schedule = try await fixture.schedule("ending", cron: "* * * * * *", catchUp: .all, end: now.addingTimeInterval(3600))
        // Due 10 s ago, with an end 5 s ago (set in the database, as if it had been reached mid-run).
        try await fixture.pool.query("UPDATE orcastra.schedules SET end_at = \(end) WHERE id = \(schedule.id)")
        try await fixture.due(schedule, at: now.addingTimeInterval(-10))
        try await fixture.orchestrator.tick()
        let times = try await fixture.occurrences(schedule)
        #expect(times.count == 6 && times.last == end, "\(times)")
        #expect(try await fixture.stored(schedule).nextFireAt == nil)
        await fixture.close()
    }

    @Test func aContextTheTemplateRefusesFailsItsOccurrenceAndNotTheOthers() async throws {
        let fixture = try await Fixture()
        // Valid when created; then the stored context is broken behind the client's back.
        let broken = try await fixture.schedule("broken", cron: "* * * * * *", template: "e2e/typed", context: ["region": "north"])
        let healthy = try await fixture.schedule("healthy", cron: "* * * * * *", template: "e2e/typed", context: ["region": "south"])
        try await fixture.pool.query("UPDATE orcastra.schedules SET context = '{\"region\": 5}' WHERE id = \(broken.id)")
        let now = Self.wholeSecond(try await fixture.now())
        try await fixture.due(broken, at: now)
        try await fixture.due(healthy, at: now)
        try await fixture.orchestrator.tick()
        let stored = try await fixture.stored(broken)
        #expect(stored.lastOutcome == "failed")
        #expect(stored.lastError?.contains("context.region must be a string") == true, "\(String(describing: stored.lastError))")
        #expect(stored.nextFireAt.map { $0 > now } == true, "a failed occurrence must not be retried forever")
        #expect(try await fixture.occurrences(broken).isEmpty)
        #expect(try await fixture.occurrences(healthy).count == 1)
        await fixture.close()
    }

    @Test func anOccurrenceTheDatabaseRefusesFailsAloneAndTheBatchStillFires() async throws {
        let fixture = try await Fixture()
        // What no check before fire_schedules foresees: the database refuses one task.
        try await fixture.pool.query("""
            CREATE FUNCTION public.refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.context->>'boom' = 'yes' THEN RAISE EXCEPTION 'boom refused'; END IF;
                RETURN NEW;
            END $$
            """)
        try await fixture.pool.query("""
            CREATE TRIGGER refuse_boom BEFORE INSERT ON orcastra.tasks FOR EACH ROW EXECUTE FUNCTION public.refuse_boom()
            """)
        let now = Self.wholeSecond(try await fixture.now())
        var schedules: [ScheduleInfo] = []
        for index in 0..<5 {
            schedules.append(try await fixture.schedule("s\(index)", cron: "* * * * * *", context: ["boom": index == 2 ? "yes" : "no"],
                                                        catchUp: .all))
        }
        for schedule in schedules { try await fixture.due(schedule, at: now) }
        try await fixture.orchestrator.tick()
        for (index, schedule) in schedules.enumerated() {
            let stored = try await fixture.stored(schedule)
            #expect(stored.nextFireAt.map { $0 > now } == true, "\(stored.name) did not move on")
            if index == 2 {
                #expect(stored.lastOutcome == "failed" && stored.lastError?.contains("boom refused") == true, "\(stored)")
                #expect(try await fixture.occurrences(schedule).isEmpty)
            } else {
                // catch_up all: `now` and any second that passed before the round ran.
                #expect(try await fixture.occurrences(schedule).first == now, "\(stored.name)")
            }
        }
        await fixture.close()
    }

    @Test func aDeprecatedPinnedVersionFailsItsOccurrenceWithTheReason() async throws {
        let fixture = try await Fixture()
        let schedule = try await fixture.schedule("pinned", cron: "* * * * * *", template: "e2e/tick@1.0.0")
        try await fixture.pool.query("SELECT orcastra.deprecate_template('e2e', 'tick', '1.0.0', 'use 2.0.0')")
        try await fixture.due(schedule, at: Self.wholeSecond(try await fixture.now()))
        try await fixture.orchestrator.tick()
        let stored = try await fixture.stored(schedule)
        #expect(stored.lastOutcome == "failed")
        #expect(stored.lastError?.contains("e2e/tick@1.0.0 is deprecated: use 2.0.0") == true, "\(String(describing: stored.lastError))")
        await fixture.close()
    }

    @Test func creatingRefusesAContextTheSchemaRefusesAndAnUnknownTemplate() async throws {
        let fixture = try await Fixture()
        await #expect(throws: StoreError.self) {
            try await fixture.schedule("bad", cron: "@daily", template: "e2e/typed", context: ["region": 5])
        }
        await #expect(throws: StoreError.self) {
            try await fixture.schedule("bad", cron: "@daily", template: "e2e/tikc")
        }
        #expect(try await fixture.client.schedules().isEmpty)
        await fixture.close()
    }
}
