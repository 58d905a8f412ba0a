"""The Python constants are read back from the SQL they mirror (like ProtocolConstantsTests does for Swift)."""

import re
from typing import Any

import psycopg

from orcastra import _protocol as protocol


def source(db: psycopg.Connection[Any], name: str) -> str:
    row = db.execute("SELECT string_agg(prosrc, E'\\n') FROM pg_proc "
                     "WHERE pronamespace = 'orcastra'::regnamespace AND proname = %s", (name,)).fetchone()
    return (row[0] if row else None) or ""


def all_matches(db: psycopg.Connection[Any], pattern: str) -> set[str]:
    rows = db.execute("SELECT DISTINCT (regexp_matches(prosrc, %s, 'g'))[1] FROM pg_proc "
                      "WHERE pronamespace = 'orcastra'::regnamespace", (pattern,)).fetchall()
    return {r[0] for r in rows}


def test_channels_match_the_sql(db: psycopg.Connection[Any]) -> None:
    assert all_matches(db, r"(?:pg_notify|post_notification)\(\s*'([^']*)'") == {protocol.ORCHESTRATOR_CHANNEL, protocol.TASK_EVENTS_CHANNEL}
    assert f"post_notification('{protocol.TASK_EVENTS_CHANNEL}'" in source(db, "audit_task_transition")
    assert f"post_notification('{protocol.ORCHESTRATOR_CHANNEL}'" in source(db, "report_steps")
    (short,) = db.execute("SELECT orcastra.namespace_channel('billing')").fetchone()  # type: ignore[misc]
    assert short == protocol.NAMESPACE_CHANNEL_PREFIX + "billing"
    # A long namespace gets a hashed name the worker must ask for, never build: still the prefix, within 63 bytes.
    (long,) = db.execute("SELECT orcastra.namespace_channel(%s)", ("n" * 63,)).fetchone()  # type: ignore[misc]
    assert long.startswith(protocol.NAMESPACE_CHANNEL_PREFIX) and len(long.encode()) <= 63 and long != protocol.NAMESPACE_CHANNEL_PREFIX + "n" * 63


def test_report_outcomes_match_the_sql(db: psycopg.Connection[Any]) -> None:
    body = source(db, "report_steps")
    for outcome in (protocol.OUTCOME_COMPLETED, protocol.OUTCOME_IGNORED, protocol.OUTCOME_LEASE_LOST):
        assert f"THEN '{outcome}'" in body or f"ELSE '{outcome}'" in body, outcome
    # waiting_for_retry and error are the failed step's new state, passed through.
    assert "WHEN i.id = ANY (v_failed) THEN s.state" in body
    for outcome in (protocol.OUTCOME_WAITING_FOR_RETRY, protocol.OUTCOME_ERROR):
        assert outcome in protocol.STEP_STATES and f"'{outcome}'" in body
    start = body.index("CASE WHEN i.id = ANY (v_done)")
    case = body[start:body.index("END", start) + 3]
    assert set(re.findall(r"'([^']*)'", case)) <= protocol.REPORT_OUTCOMES


def test_error_codes_match_the_sql(db: psycopg.Connection[Any]) -> None:
    raised = all_matches(db, r"ERRCODE\s*=\s*'(OR[0-9A-Z]{3})'")
    assert raised == {protocol.SQLSTATE_ILLEGAL_TRANSITION, protocol.SQLSTATE_REFUSED_OPERATOR_ACTION,
                      protocol.SQLSTATE_TEMPLATE_NOT_FOUND, protocol.SQLSTATE_TEMPLATE_DEPRECATED,
                      protocol.SQLSTATE_STEP_NOT_COMPLETED,
                      protocol.SQLSTATE_NAMESPACE_NOT_GRANTED, protocol.SQLSTATE_CONCURRENCY_KEY_MISSING,
                      protocol.SQLSTATE_HISTORY_PARTITION_ARGUMENT, protocol.SQLSTATE_TRACEPARENT_INVALID,
                      protocol.SQLSTATE_WORKFLOW_TEMPLATE_MISSING, protocol.SQLSTATE_PARENT_STEP_INVALID}


def test_states_match_the_check_constraints(db: psycopg.Connection[Any]) -> None:
    def states(table: str) -> set[str]:
        (definition,) = db.execute(  # type: ignore[misc]
            "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c WHERE c.conrelid = %s::regclass "
            "AND c.contype = 'c' AND pg_get_constraintdef(c.oid) LIKE '%%state%%'", (f"orcastra.{table}",)).fetchone()
        return set(re.findall(r"'([a-z_]+)'", definition))

    assert states("tasks") == set(protocol.TASK_STATES)
    assert states("steps") == set(protocol.STEP_STATES)
    assert protocol.SETTLED_TASK_STATES < set(protocol.TASK_STATES)


def test_retry_delay_follows_the_documented_formula() -> None:
    policy = {"backoff": "exponential", "initial_delay_ms": 1000, "max_delay_ms": 300_000, "jitter": True}
    assert protocol.retry_after_ms(policy, 1, r=0.0) == 500
    assert protocol.retry_after_ms(policy, 2, r=0.999) == 1999
    assert protocol.retry_after_ms({**policy, "jitter": False}, 30) == 300_000
    assert protocol.retry_after_ms({**policy, "jitter": False}, 200) == 300_000
    assert protocol.retry_after_ms({**policy, "backoff": "fixed", "jitter": False}, 5) == 1000
    assert protocol.retry_after_ms({**policy, "backoff": "none"}, 5) == 0
    assert protocol.retry_after_ms(None, 1) == 0


def test_durations_read_as_the_swift_worker_writes_them() -> None:
    cases = {0: "0s", 300: "300ms", 1500: "1500ms", 30_000: "30s", 90_000: "90s", 300_000: "5m",
             3_600_000: "1h", 5_400_000: "90m", 3_600_001: "1h1ms", 3_700_000: "3700s", 3_661_000: "3661s", 3_601_500: "1h1s500ms"}
    assert {ms: protocol.duration_text(ms) for ms in cases} == cases
