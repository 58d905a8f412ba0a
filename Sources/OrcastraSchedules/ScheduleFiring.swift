import Foundation

/// Which occurrences of a due schedule fire now, and when it is due next: the rules of
/// `catch_up`, `start` and `end` (docs/schedules.md), as pure functions of the schedule and the
/// database's clock. The orchestrator applies the plan with `orcastra.fire_schedules` in the
/// transaction that locked the schedule; the client uses `firstFireTime` when it creates one.
public enum ScheduleFiring {
    /// `catch_up: all` fires at most this many missed occurrences (the most recent ones).
    public static let catchUpLimit = 1_000
    /// An occurrence found later than this after its time was missed: `catch_up: none` drops it.
    /// Within it, an occurrence is on time (an orchestrator that was busy, or woke a little late).
    public static let missedAfter: TimeInterval = 60

    /// What to do for a schedule whose `next_fire_at` has come.
    public struct Plan: Sendable, Equatable {
        /// The occurrences to fire, oldest first.
        public var occurrences: [Date]
        /// Due occurrences that make no task (catch-up `latest` or `none`, or beyond the `all`
        /// cap); `manyDropped` is true when there were more than were counted.
        public var dropped: Int
        public var manyDropped: Bool
        /// The first occurrence after `now`, or nil when none is left (past `end`, or never).
        public var nextFireAt: Date?

        public init(occurrences: [Date], dropped: Int, manyDropped: Bool, nextFireAt: Date?) {
            self.occurrences = occurrences
            self.dropped = dropped
            self.manyDropped = manyDropped
            self.nextFireAt = nextFireAt
        }
    }

    /// The first occurrence of a new (or changed, or resumed) schedule: the first one at or after
    /// `start`, and after `now` — occurrences before a schedule existed were never missed.
    public static func firstFireTime(_ cron: CronExpression, in timeZone: TimeZone, start: Date?, end: Date?, now: Date) -> Date? {
        var after = now
        if let start, start > now { after = start.addingTimeInterval(-0.000_001) }
        guard let first = cron.nextFireTime(after: after, in: timeZone) else { return nil }
        if let end, first > end { return nil }
        return first
    }

    /// The plan for a schedule due at `nextFireAt` (≤ `now`): every occurrence from `nextFireAt`
    /// through `now` (and not after `end`) is due; `catchUp` picks which of them fire.
    public static func plan(_ cron: CronExpression, in timeZone: TimeZone, nextFireAt: Date, now: Date, end: Date?,
                            catchUp: CatchUpPolicy) -> Plan {
        let until = end.map { min($0, now) } ?? now
        var next = cron.nextFireTime(after: now, in: timeZone)
        if let end, let upcoming = next, upcoming > end { next = nil }
        guard nextFireAt <= until else {
            // Nothing is due (end passed before it, or a caller's early look): only move on.
            return Plan(occurrences: [], dropped: 0, manyDropped: false, nextFireAt: nextFireAt > now ? nextFireAt : next)
        }
        let wanted = catchUp == .all ? catchUpLimit : 1
        let (recent, earlier) = lastOccurrences(wanted, of: cron, in: timeZone, from: nextFireAt, through: until)
        var occurrences = recent
        var dropped = earlier.count
        if catchUp == .none, let latest = occurrences.last, now.timeIntervalSince(latest) > missedAfter {
            occurrences = []
            dropped += 1
        }
        return Plan(occurrences: occurrences, dropped: dropped, manyDropped: earlier.many, nextFireAt: next)
    }

    /// The last `count` occurrences in [`from`, `through`], oldest first, and how many earlier ones
    /// there are (`many`: more than were counted). `from` is an occurrence. Looks back from
    /// `through` in a doubling window, so a schedule every second that missed a year does not
    /// walk through 31 million occurrences to find its latest.
    static func lastOccurrences(_ count: Int, of cron: CronExpression, in timeZone: TimeZone,
                                from: Date, through: Date) -> ([Date], earlier: (count: Int, many: Bool)) {
        var window: TimeInterval = 60
        while true {
            let windowStart = max(from, through.addingTimeInterval(-window))
            var found: [Date] = []
            var cursor: Date? = windowStart == from ? from : cron.nextFireTime(after: windowStart.addingTimeInterval(-0.000_001), in: timeZone)
            while let occurrence = cursor, occurrence <= through {
                found.append(occurrence)
                cursor = cron.nextFireTime(after: occurrence, in: timeZone)
            }
            if windowStart == from {
                let earlier = max(0, found.count - count)
                return (Array(found.suffix(count)), (earlier, false))
            }
            if found.count >= count {
                // `from` and maybe more lie before the window: at least one more was missed.
                return (Array(found.suffix(count)), (found.count - count + 1, true))
            }
            window *= 4
        }
    }
}
