"""Names, codes and rules of Orcastra's SQL worker protocol (docs/worker-protocol.md).

SQL is the source of these; `tests/test_constants.py` reads them back from a migrated database,
like `ProtocolConstantsTests` does for the Swift mirror (Sources/OrcastraStateMachines/ProtocolConstants.swift).
"""

from __future__ import annotations

import json
import math
import random
from typing import Any, Final

# NOTIFY channels. A notification carries no state; it only says "look again".
ORCHESTRATOR_CHANNEL: Final = "orcastra_orchestrator"
TASK_EVENTS_CHANNEL: Final = "orcastra_task_events"
#: The start of every namespace channel. Never build a channel from it: ask
#: ``SELECT orcastra.namespace_channel(ns)`` (long namespaces get a hashed name).
NAMESPACE_CHANNEL_PREFIX: Final = "orcastra_ns_"

# What report_steps says became of each reported attempt (its `outcome` column).
OUTCOME_COMPLETED: Final = "completed"
OUTCOME_WAITING_FOR_RETRY: Final = "waiting_for_retry"
OUTCOME_ERROR: Final = "error"
OUTCOME_IGNORED: Final = "ignored"
OUTCOME_LEASE_LOST: Final = "lease_lost"
REPORT_OUTCOMES: Final = frozenset(
    {OUTCOME_COMPLETED, OUTCOME_WAITING_FOR_RETRY, OUTCOME_ERROR, OUTCOME_IGNORED, OUTCOME_LEASE_LOST}
)

# SQLSTATEs Orcastra's SQL raises itself.
SQLSTATE_ILLEGAL_TRANSITION: Final = "OR001"
SQLSTATE_REFUSED_OPERATOR_ACTION: Final = "OR002"
SQLSTATE_TEMPLATE_NOT_FOUND: Final = "OR003"
SQLSTATE_TEMPLATE_DEPRECATED: Final = "OR004"
#: complete_step_in_transaction: the step was not completed (DETAIL: lease_lost or ignored); roll back.
SQLSTATE_STEP_NOT_COMPLETED: Final = "OR005"
# claim_steps, register_worker, template_definition: the login role was not granted the namespace
# (`orcastra roles grant-worker`; docs/security.md).
SQLSTATE_NAMESPACE_NOT_GRANTED: Final = "OR007"
# create_task: the template's concurrency key selects nothing (or null) in the task's context.
SQLSTATE_CONCURRENCY_KEY_MISSING: Final = "OR010"
# create_task: a `workflow:` step of the template names a template that is not registered.
SQLSTATE_WORKFLOW_TEMPLATE_MISSING: Final = "OR017"
# create_task: p_parent_step is not a workflow step waiting to start (only the database passes one).
SQLSTATE_PARENT_STEP_INVALID: Final = "OR018"
# maintain_history_partitions, create_history_partition: an argument out of range (docs/retention.md).
SQLSTATE_HISTORY_PARTITION_ARGUMENT: Final = "OR021"
# create_task, create_task_by_name, create_tasks: p_traceparent is not a W3C trace context (docs/tracing.md).
SQLSTATE_TRACEPARENT_INVALID: Final = "OR025"

TASK_STATES: Final = ("pending", "in_progress", "waiting_for_retry", "error", "complete", "cancelled", "resolved_manually")
STEP_STATES: Final = (
    "pending", "enqueued", "in_progress", "waiting_for_retry", "complete", "error", "cancelled", "resolved_manually", "skipped",
)
#: Task states that end a wait: nothing more happens without an operator (`error` is not terminal,
#: but nothing runs until someone retries or resolves a step).
SETTLED_TASK_STATES: Final = frozenset({"complete", "error", "cancelled", "resolved_manually"})

#: The largest result a worker stores (compact JSON text, UTF-8 bytes): docs/worker-protocol.md#size-limits.
MAX_RESULT_BYTES: Final = 1 << 20
#: The most characters of an error message report_steps keeps.
MAX_ERROR_CHARACTERS: Final = 65_536
#: SQLSTATE classes of passing faults (nothing was written; try again later). Any other is a refusal.
PASSING_SQLSTATE_CLASSES: Final = frozenset({"08", "40", "53", "55", "57", "58"})
#: How many times a worker tries to report one outcome through passing faults before it forgets the step.
MAX_REPORT_TRIES: Final = 20


def retry_after_ms(policy: dict[str, Any] | None, attempt: int, r: float | None = None) -> int:
    """The wait before the next attempt after `attempt` failed (docs/worker-protocol.md#computing-retry_after_ms).

    Mirrors RetryPolicy.delay(afterAttempt:random:) in Swift. Without a policy the Swift worker passes 0.
    """
    if policy is None:
        return 0
    backoff = policy.get("backoff", "exponential")
    initial = int(policy.get("initial_delay_ms", 0))
    maximum = int(policy.get("max_delay_ms", 0))
    if backoff == "none":
        base = 0
    elif backoff == "fixed":
        base = min(initial, maximum)
    else:
        exponent = max(attempt - 1, 0)
        base = maximum if exponent >= 62 else min(initial * (1 << exponent), maximum)
    if policy.get("jitter", False) and base > 0:
        u = random.random() if r is None else r
        return min(base, math.floor(base / 2 + u * base / 2))
    return base


_DURATION_UNITS: Final = (("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1))


def duration_text(milliseconds: int) -> str:
    """A duration as templates write it, as Swift's TemplateDuration.description does: the shortest text
    that parses back to the same value (`90s`, `1500ms`, `1h1ms`); ties prefer the combined form."""
    if milliseconds == 0:
        return "0s"
    if milliseconds < 0:
        return "-" + duration_text(-milliseconds)
    combined, remainder = "", milliseconds
    for suffix, unit in _DURATION_UNITS:
        count = remainder // unit
        if count > 0:
            combined += f"{count}{suffix}"
            remainder -= count * unit
    best = combined
    for suffix, unit in _DURATION_UNITS:
        if milliseconds % unit == 0:
            single = f"{milliseconds // unit}{suffix}"
            if len(single) < len(best):
                best = single
    return best


def error_message(message: str) -> str:
    """A failure message as PostgreSQL can store it: NUL shown as ``\\0`` (and said so), long ones keep their end."""
    text = message
    if "\0" in text:
        text = text.replace("\0", "\\0") + " (NUL characters shown as \\0)"
    if len(text) > MAX_ERROR_CHARACTERS:
        text = "…" + text[-(MAX_ERROR_CHARACTERS - 1):]
    return text


class UnstorableResult(Exception):
    """A handler's result that cannot be stored; the step fails permanently with this message."""


def _nul_path(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\0" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\0" in key:
                return f"{path} (a key)"
            found = _nul_path(item, f"{path}.{key}")
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}[{index}]")
            if found:
                return found
    return None


def result_json(value: Any) -> str:
    """The result as compact JSON text, or UnstorableResult saying why it cannot be stored."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        raise UnstorableResult(f"result not storable: it is not JSON-serializable: {error}") from None
    # surrogatepass: a lone surrogate is counted here and refused by the driver when reported.
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_RESULT_BYTES:
        raise UnstorableResult(f"the result is {size} bytes, over the limit of {MAX_RESULT_BYTES}")
    where = _nul_path(value, "$")
    if where is not None:
        raise UnstorableResult(
            f"result not storable: the string at {where} contains a NUL character, which PostgreSQL's jsonb cannot hold"
        )
    return text


def is_passing_fault(error: BaseException) -> bool:
    """Whether a database error is a passing fault (retry the same call later) rather than a refusal."""
    import psycopg

    if not isinstance(error, psycopg.Error):
        return False
    state = error.sqlstate
    if state is None:
        # No SQLSTATE: the connection (OperationalError, InterfaceError) rather than the data.
        return isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))
    return state[:2] in PASSING_SQLSTATE_CLASSES
