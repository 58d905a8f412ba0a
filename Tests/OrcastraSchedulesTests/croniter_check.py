#!/usr/bin/env python3
"""Cross-checks OrcastraSchedules' fire times against croniter (CronCrossCheckTests runs it).

Reads a JSON file: [{"expression", "croniterExpression" (the same, as croniter must be given it),
"timezone", "start" (Unix seconds), "ours" (Unix seconds)}].
Computes the same number of fire times with croniter, in the same zone, after the same instant,
and prints one JSON object: {"croniter": VERSION, "cases": N, "mismatches": [...]}, each mismatch
with croniter's times ("theirs") next to ours.
"""
import json
import sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from croniter import croniter
from importlib.metadata import version as package_version

version = package_version("croniter")


def fire_times(expression, zone_name, start, count):
    zone = ZoneInfo(zone_name)
    begin = datetime.fromtimestamp(start, tz=timezone.utc).astimezone(zone)
    six = len(expression.split()) == 6
    iterator = croniter(expression, begin, second_at_beginning=six)
    result = []
    for _ in range(count):
        try:
            result.append(int(iterator.get_next(datetime).timestamp()))
        except Exception as error:  # croniter gives up on expressions it finds no match for
            result.append(f"error: {error}")
            break
    return result


def main():
    with open(sys.argv[1]) as file:
        cases = json.load(file)
    mismatches = []
    for case in cases:
        theirs = fire_times(case["croniterExpression"], case["timezone"], case["start"], len(case["ours"]))
        if theirs != case["ours"]:
            mismatches.append({**case, "theirs": theirs})
    json.dump({"croniter": version, "cases": len(cases), "mismatches": mismatches}, sys.stdout)


if __name__ == "__main__":
    main()
