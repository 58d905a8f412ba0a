#!/usr/bin/env bash
# Times CronExpression.nextFireTime in an optimized build (docs/schedules.md, "Speed"): compiles the
# cron sources alone with -O (no package build needed) and calls it 200,000 times per zone.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for file in CronExpression CronField CronError LocalTime; do
    sed 's/^import OrcastraTemplates$//' "Sources/OrcastraSchedules/$file.swift" > "$work/$file.swift"
done
# Suggestions for typos need EditDistance from OrcastraTemplates; parsing valid expressions never calls it.
echo 'enum EditDistance { static func distance(_ a: String, _ b: String) -> Int { a == b ? 0 : 99 } }' > "$work/Stub.swift"
cat > "$work/main.swift" <<'SWIFT'
import Foundation
let zones = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"].map { TimeZone(identifier: $0)! }
let expressions = ["*/15 9-17 * * mon-fri", "0 2 * * *", "*/5 * * * *", "30 2 1 * *", "0 */6 * * 1-5", "15 10 * * 6,0",
                   "*/10 * * * * *", "0 0 29 2 *"].map { try! CronExpression(parsing: $0) }
let base = Date(timeIntervalSince1970: 1_800_000_000)
var sink = 0.0
for zone in zones {
    let calls = 200_000
    let start = DispatchTime.now().uptimeNanoseconds
    for i in 0..<calls {
        sink += expressions[i % expressions.count].nextFireTime(after: base.addingTimeInterval(Double(i * 37)), in: zone)?.timeIntervalSince1970 ?? 0
    }
    let perCall = Double(DispatchTime.now().uptimeNanoseconds - start) / Double(calls) / 1000
    print("\(zone.identifier): \(String(format: "%.2f", perCall)) µs per nextFireTime")
}
if sink == 0 { print("") }
SWIFT
swiftc -O -o "$work/cron-benchmark" "$work"/*.swift
"$work/cron-benchmark"
