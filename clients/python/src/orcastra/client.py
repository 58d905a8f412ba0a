"""Submitting, reading, waiting for and cancelling tasks through Orcastra's SQL functions."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from . import _protocol as protocol
from ._connect import connect_options, listen_conninfo

#: The largest context the Swift client accepts (1 MiB of compact JSON text; docs/limits.md).
MAX_CONTEXT_BYTES = 1 << 20


class TaskNotFound(LookupError):
    def __init__(self, task_id: uuid.UUID | str) -> None:
        super().__init__(f"no task {task_id}")
        self.task_id = str(task_id)


class WaitTimedOut(TimeoutError):
    def __init__(self, task_id: uuid.UUID | str, after: float, state: str) -> None:
        super().__init__(f"task {task_id} did not settle within {after:g} s (it is {state})")
        self.task_id = str(task_id)
        self.state = state


class SubmitRefused(ValueError):
    """The database refused a submission: no such template or version (OR003), a deprecated version (OR004), …"""

    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class NotInTransaction(RuntimeError):
    """``submit(…, conn=…)`` got a connection that is not inside an open transaction: nothing was sent."""


@dataclass(frozen=True)
class Submission:
    task_id: uuid.UUID
    #: False when the idempotency key matched an earlier task (returned instead; nothing was written).
    created: bool
    state: str
    template_id: int
    template_version: str
    #: True when an earlier task was returned whose context differs from the one given now.
    context_differs: bool


@dataclass(frozen=True)
class StepInfo:
    id: int
    name: str
    namespace: str
    state: str
    state_reason: str
    attempts: int
    max_attempts: int
    last_error: str | None
    result: Any
    depends_on: list[str]


@dataclass(frozen=True)
class TaskInfo:
    id: uuid.UUID
    template: str  # namespace/name@version
    state: str
    state_reason: str
    priority: int
    idempotency_key: str | None
    context: Any
    run_at: dt.datetime
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None
    steps: list[StepInfo]

    @property
    def settled(self) -> bool:
        """Complete, cancelled, resolved by hand, or in error (nothing runs until an operator acts)."""
        return self.state in protocol.SETTLED_TASK_STATES

    def step(self, name: str) -> StepInfo:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    @property
    def results(self) -> dict[str, Any]:
        """Each step's name → its result (None when it has none yet)."""
        return {step.name: step.result for step in self.steps}


_TASK_QUERY = """
SELECT t.id, tp.namespace || '/' || tp.name || '@' || tp.version, t.state, t.state_reason, t.priority,
       t.idempotency_key, t.context, t.run_at, t.created_at, t.started_at, t.finished_at, t.error,
       coalesce((SELECT jsonb_agg(jsonb_build_object(
                     'id', s.id, 'name', s.name, 'namespace', s.namespace, 'state', s.state,
                     'state_reason', s.state_reason, 'attempts', s.attempts, 'max_attempts', s.max_attempts,
                     'last_error', s.last_error, 'result', r.result,
                     'depends_on', coalesce((SELECT jsonb_agg(p.name ORDER BY p.id)
                                             FROM orcastra.step_links e JOIN orcastra.steps p ON p.id = e.parent_id
                                             WHERE e.child_id = s.id), '[]'::jsonb))
                     ORDER BY s.id)
                 FROM orcastra.steps s LEFT JOIN orcastra.step_results r ON r.step_id = s.id
                 WHERE s.task_id = t.id), '[]'::jsonb)
FROM orcastra.tasks t JOIN orcastra.templates tp ON tp.id = t.template_id
WHERE t.id = %s
"""


def _parse_reference(reference: str) -> tuple[str, str, str | None]:
    base, _, version = reference.partition("@")
    namespace, slash, name = base.partition("/")
    if not slash or not namespace or not name or "/" in name:
        raise ValueError(f"a template reference is namespace/name or namespace/name@version, not {reference!r}")
    return namespace, name, version or None


class Client:
    """A synchronous client on one connection (opened on first use; `close()` or `with` ends it).

    Thread-safe: calls are serialized on the connection. `wait` uses a LISTEN connection of its own.
    """

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._connection: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _execute(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            if self._connection is None or self._connection.closed or self._connection.broken:
                self._connection = psycopg.connect(self.conninfo, autocommit=True, **connect_options())
            return self._connection.execute(query, params).fetchall()

    def submit(self, reference: str, context: Any = None, *, idempotency_key: str | None = None, priority: int = 0,
               run_at: dt.datetime | None = None, allow_deprecated: bool = False,
               traceparent: str | None = None,
               conn: psycopg.Connection[Any] | None = None) -> Submission:
        """Creates a task of template ``namespace/name`` (its default, else highest release) or ``namespace/name@version``.

        ``run_at`` in the future schedules the task; ``priority`` is copied to its steps (higher first).
        An ``idempotency_key`` already used for this template returns that task (``created`` False).
        Like the SQL function, this does not check the context against the template's input_schema.

        ``traceparent``: the W3C trace context (``00-<trace id>-<parent span id>-<flags>``) the
        task's step attempts become spans of (docs/tracing.md); None starts a new trace. A
        malformed one is refused with SubmitRefused (SQLSTATE OR025).

        ``conn``: submit inside the caller's open transaction on that psycopg connection, so the
        task exists if and only if that transaction commits (and workers are woken only at the
        commit). The checks above run first, before anything is sent. A connection not inside an
        open transaction (autocommit mode without ``BEGIN``/``conn.transaction()``, a transaction
        not started yet, or one aborted by a failed statement) raises NotInTransaction and nothing
        is sent. If the database refuses the task (SubmitRefused), the caller's transaction is
        aborted like after any failed statement: roll it back.
        """
        namespace, name, version = _parse_reference(reference)
        if run_at is not None and run_at.tzinfo is None:
            raise ValueError("run_at must be timezone-aware")
        context = {} if context is None else context
        text = json.dumps(context, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        if len(text.encode()) > MAX_CONTEXT_BYTES:
            raise ValueError(f"the context is {len(text.encode())} bytes, over the limit of {MAX_CONTEXT_BYTES}")
        if conn is not None:
            _check_in_transaction(conn)
        query = ("SELECT task_id, created, state, template_id, template_version, context_differs "
                 "FROM orcastra.create_task_by_name(%s, %s, p_version => %s, p_context => %s::jsonb, "
                 "p_idempotency_key => %s, p_priority => %s::int, p_run_at => %s, p_allow_deprecated => %s, "
                 "p_traceparent => %s)")
        params = (namespace, name, version, text, idempotency_key, priority, run_at, allow_deprecated, traceparent)
        try:
            if conn is None:
                rows = self._execute(query, params)
            else:
                rows = conn.execute(query, params).fetchall()
        except psycopg.Error as error:
            if error.sqlstate and error.sqlstate.startswith("OR"):
                raise SubmitRefused(error.diag.message_primary or str(error), error.sqlstate) from None
            raise
        task_id, created, state, template_id, template_version, differs = rows[0]
        return Submission(task_id, created, state, template_id, template_version, differs)

    def task(self, task_id: uuid.UUID | str) -> TaskInfo:
        """The task and its steps as stored now; TaskNotFound when there is none."""
        rows = self._execute(_TASK_QUERY, (_uuid(task_id),))
        if not rows:
            raise TaskNotFound(task_id)
        (id_, template, state, reason, priority, key, context, run_at, created_at, started_at, finished_at,
         error, steps) = rows[0]
        return TaskInfo(
            id=id_, template=template, state=state, state_reason=reason, priority=priority, idempotency_key=key,
            context=context, run_at=run_at, created_at=created_at, started_at=started_at, finished_at=finished_at,
            error=error,
            steps=[StepInfo(id=s["id"], name=s["name"], namespace=s["namespace"], state=s["state"],
                            state_reason=s["state_reason"], attempts=s["attempts"], max_attempts=s["max_attempts"],
                            last_error=s["last_error"], result=s["result"], depends_on=list(s["depends_on"]))
                   for s in steps])

    def wait(self, task_id: uuid.UUID | str, timeout: float | None = None, *, recheck: float = 5.0) -> TaskInfo:
        """Waits until the task has settled (complete, cancelled, resolved by hand, or error) and returns it.

        Woken by LISTEN on the task events channel; the task is re-read on each notification for it
        (and, as a safety net for a lost notification, every ``recheck`` seconds). Raises
        WaitTimedOut after ``timeout`` seconds.
        """
        wanted = str(_uuid(task_id))
        deadline = None if timeout is None else time.monotonic() + timeout
        with psycopg.connect(listen_conninfo(self.conninfo), autocommit=True, **connect_options()) as listen:
            listen.execute(sql.SQL("LISTEN {}").format(sql.Identifier(protocol.TASK_EVENTS_CHANNEL)))
            while True:
                info = self.task(wanted)  # after LISTEN: a change from here on wakes us
                if info.settled:
                    return info
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise WaitTimedOut(wanted, timeout or 0.0, info.state)
                pause = recheck if remaining is None else min(recheck, remaining)
                woken = False
                while not woken:
                    got = False
                    for notify in listen.notifies(timeout=pause, stop_after=1):
                        got = True
                        woken = notify.payload in ("", wanted)
                    if not got:
                        break  # the recheck interval or the deadline
                    # Drain what else is pending: any number of notifications is one wake-up.
                    for notify in listen.notifies(timeout=0):
                        woken = woken or notify.payload in ("", wanted)
                    if deadline is not None:
                        pause = max(min(recheck, deadline - time.monotonic()), 0.0)
                        if pause == 0.0:
                            break

    def cancel(self, task_id: uuid.UUID | str, reason: str = "cancelled by a client") -> str:
        """Cancels the task; returns its state afterwards (unchanged if it had already finished).

        Steps running at that moment are cancelled by their worker's next heartbeat or report.
        """
        rows = self._execute("SELECT orcastra.cancel_task(%s, %s)", (_uuid(task_id), reason))
        state = rows[0][0] if rows else None
        if state is None:
            raise TaskNotFound(task_id)
        return str(state)


def _check_in_transaction(conn: psycopg.Connection[Any]) -> None:
    if not isinstance(conn, psycopg.Connection):
        raise TypeError(f"conn must be a psycopg.Connection (a sync one), not {type(conn).__name__}")
    status = conn.info.transaction_status
    if status == psycopg.pq.TransactionStatus.INTRANS:
        return
    if status == psycopg.pq.TransactionStatus.INERROR:
        why = "its transaction was aborted by a failed statement (roll it back)"
    elif status == psycopg.pq.TransactionStatus.IDLE:
        why = ("it is in autocommit mode outside a transaction" if conn.autocommit
               else "no transaction is open on it yet")
    else:
        why = f"its state is {status.name}"
    raise NotInTransaction(f"submit(conn=…) needs a connection inside an open transaction, but {why}: open one "
                           "first (`with conn.transaction():`), so that the task commits or rolls back with "
                           "your writes; nothing was sent")


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


__all__ = ["Client", "NotInTransaction", "StepInfo", "SubmitRefused", "Submission", "TaskInfo", "TaskNotFound", "WaitTimedOut"]
