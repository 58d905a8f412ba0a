"""A worker that runs the steps of one namespace through Orcastra's SQL worker protocol.

Follows docs/worker-protocol.md: LISTEN on the namespace's channel (asked of the database) before
the first claim, claim until a claim comes back short, poll as a safety net, heartbeat every third
of the lease with self-fencing, report outcomes in batches with their lease tokens (refilling the
freed slots in the same transaction), split a refused batch, enforce the template's timeouts, and
on SIGTERM/SIGINT stop claiming, let running steps finish within a grace period and hand back the
rest with release_steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import logging
import os
import platform
import secrets
import signal
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from . import _protocol as protocol
from ._connect import connect_options, listen_conninfo
from ._version import __version__

log = logging.getLogger("orcastra.worker")

Handler = Callable[["Step"], Any]
H = TypeVar("H", bound=Handler)


class Permanent(Exception):
    """Raise from a handler to fail the step for good: no retry, whatever attempts are left.

    Any other exception is a retryable failure: the step runs again after the backoff of its
    template's retry policy, until its attempts are used up.
    """


class Step:
    """What a handler sees of the step it runs."""

    def __init__(self, *, step_id: int, task_id: uuid.UUID, name: str, handler: str, attempt: int,
                 max_attempts: int, context: Any, parents: dict[str, Any], timeout: float,
                 worker: Worker, connection: psycopg.AsyncConnection[Any] | None = None,
                 traceparent: str | None = None, item: Any = None, index: int | None = None) -> None:
        self.step_id = step_id
        self.task_id = task_id
        self.name = name
        self.handler = handler
        self.attempt = attempt
        self.max_attempts = max_attempts
        #: The task's context: the JSON it was submitted with. For an instance of a fan-out, None
        #: unless its step's ``instance_input`` lists ``context`` (docs/templates.md "Fan-out").
        self.context = context
        #: Each parent step's name → its result (None when it has none). {} for a root step. For an
        #: instance of a fan-out, its fan-out step's parents when ``instance_input`` lists
        #: ``parents``, else {}.
        self.parents = parents
        #: How long this attempt may run (the template's `timeout`), in seconds.
        self.timeout = timeout
        self._started = time.monotonic()
        #: When the attempt times out (UTC).
        self.deadline = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=timeout)
        #: The W3C trace context the task was submitted under (docs/tracing.md), to continue its
        #: trace: ``opentelemetry.propagate.extract({"traceparent": step.traceparent})``. None only
        #: for tasks made before migration 0008.
        self.traceparent = traceparent
        #: For an instance of a fan-out step (``for_each``, docs/templates.md "Fan-out"): its item of
        #: the list and that item's index (from 0); None for any other step.
        self.item = item
        self.index = index
        self._worker = worker
        self._connection = connection

    @property
    def idempotency_key(self) -> str:
        """The same in every attempt of this step, on every worker: ``<task id>/<step name>``.

        The format of Swift's ``StepContext.idempotencyKey`` and of command steps'
        ``ORCASTRA_IDEMPOTENCY_KEY``. Pass it to APIs that deduplicate requests (docs/transactions.md).
        """
        return f"{self.task_id}/{self.name}"

    @property
    def connection(self) -> psycopg.AsyncConnection[Any]:
        """A transactional handler's connection, inside the step's transaction (docs/transactions.md).

        Write through it only: its writes commit together with the step's completion, or not at all.
        Do not ``COMMIT`` or ``ROLLBACK`` on it (``async with step.connection.transaction()`` makes
        a savepoint, which is fine). Raises RuntimeError for a handler not registered with
        ``transactional=True``.
        """
        if self._connection is None:
            raise RuntimeError(f"step {self.name}: its handler {self.handler!r} is not transactional, so it has no "
                               "connection; register it with @worker.handler(name, transactional=True)")
        return self._connection

    def time_left(self) -> float:
        """Seconds until the attempt times out (negative once it has)."""
        return self.timeout - (time.monotonic() - self._started)

    @property
    def shutting_down(self) -> bool:
        """True once the worker was asked to stop: finish soon, or raise to be retried elsewhere."""
        return self._worker.stopping

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts

    def __repr__(self) -> str:
        return f"Step({self.name!r}, task={self.task_id}, attempt={self.attempt}/{self.max_attempts})"


@dataclass
class _Held:
    """A claimed step: from the claim until its outcome is reported or it is given up."""

    step_id: int
    token: uuid.UUID
    task_id: uuid.UUID
    name: str
    attempt: int
    max_attempts: int
    template_id: int
    context: Any
    parents: dict[str, Any]
    traceparent: str | None
    #: A fan-out instance's item and index (claim_steps' item, item_index); None otherwise.
    item: Any
    item_index: int | None
    #: Until when the lease surely holds (monotonic): the last claim or heartbeat *sent* plus the lease.
    renewed_until: float
    task: asyncio.Task[None] | None = None
    #: Lost, cancelled or fenced: nothing is reported for it.
    abandoned: bool = False


@dataclass
class _Outcome:
    held: _Held
    result: str | None = None  # compact JSON text of a success
    error: str | None = None  # a failure's message (None: success)
    retry_after_ms: int | None = None  # None with an error: permanent
    tries: int = 0

    @property
    def is_success(self) -> bool:
        return self.error is None


@dataclass
class _Registration:
    attempted: bool = False
    registered: bool = False
    started_at: dt.datetime | None = None
    warned_unavailable: bool = False


@dataclass
class _Counters:
    claimed: int = 0
    reported: dict[str, int] = field(default_factory=dict)


class Worker:
    """Runs the steps of `namespace` with the handlers registered by :meth:`handler`.

    ``concurrency`` steps run at once; ``claim_batch`` is the most one claim takes. ``lease`` (seconds)
    is how long a claimed step is held without a heartbeat (heartbeats come every third of it);
    ``poll_interval`` is the safety net for lost notifications; ``grace_period`` is how long running
    steps may take to finish on shutdown before they are handed back.
    """

    def __init__(self, conninfo: str, *, namespace: str, concurrency: int = 10, claim_batch: int | None = None,
                 lease: float = 30.0, poll_interval: float = 1.0, grace_period: float = 30.0,
                 worker_id: str | None = None) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if lease < 0.3:
            raise ValueError("lease must be at least 0.3 s")
        self.conninfo = conninfo
        self.namespace = namespace
        self.concurrency = concurrency
        self.claim_batch = max(1, min(claim_batch or concurrency, concurrency))
        self.lease = lease
        self.poll_interval = poll_interval
        self.grace_period = grace_period
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.version = (f"orcastra-python {__version__} ({platform.python_implementation()} "
                        f"{platform.python_version()}, psycopg {psycopg.__version__})")
        self._handlers: dict[str, Handler] = {}
        self._transactional: set[str] = set()
        self._pool = _ConnectionPool(conninfo, concurrency)  # transactional steps' connections
        self._held: dict[int, _Held] = {}
        self._outcomes: list[_Outcome] = []
        self._templates: dict[int, dict[str, dict[str, Any]]] = {}
        self._registration = _Registration()
        self._counters = _Counters()
        self._stopping = False
        self._signals = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kick: asyncio.Event | None = None
        self._claim_due = True
        self._work: psycopg.AsyncConnection[Any] | None = None  # claims and the hand-back
        self._report_conn: psycopg.AsyncConnection[Any] | None = None  # reports with their refill claims
        self._reserved = 0  # slots a claim in flight may fill
        self._outcome_event: asyncio.Event | None = None
        self._beat: psycopg.AsyncConnection[Any] | None = None
        self._beat_lock: asyncio.Lock | None = None
        self._channel = ""

    # MARK: - Public API

    def handler(self, name: str, *, transactional: bool = False) -> Callable[[H], H]:
        """Registers a handler for the template steps with ``handler: name``.

        The function takes a :class:`Step` and returns the step's result (any JSON-serializable
        value). ``async def`` handlers run on the worker's event loop; plain functions run in a
        thread of their own.

        ``transactional=True``: the handler gets ``step.connection``, a psycopg AsyncConnection
        inside a transaction of its own; its writes there commit together with the step's
        completion, after the lease check in that same transaction, or roll back (docs/transactions.md).
        Transactional handlers must be ``async def`` (TypeError otherwise).
        """

        def register(function: H) -> H:
            self.add_handler(name, function, transactional=transactional)
            return function

        return register

    def add_handler(self, name: str, function: Handler, *, transactional: bool = False) -> None:
        if transactional and not inspect.iscoroutinefunction(function):
            raise TypeError(f"transactional handler {name!r} must be an async function (async def): it gets an "
                            "AsyncConnection and runs on the worker's event loop, where its statement can be "
                            "cancelled on a timeout")
        self._handlers[name] = function
        if transactional:
            self._transactional.add(name)
        else:
            self._transactional.discard(name)

    @property
    def handler_names(self) -> list[str]:
        return sorted(self._handlers)

    @property
    def stopping(self) -> bool:
        return self._stopping

    def run(self) -> None:
        """Runs until SIGTERM or SIGINT, then shuts down gracefully and returns.

        A second signal during the grace period exits the process at once (status 128 + signal).
        """
        asyncio.run(self.serve())

    def stop(self) -> None:
        """Asks a running worker to shut down gracefully; safe from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._begin_shutdown, "stop() was called")

    async def serve(self, *, install_signal_handlers: bool = True) -> None:
        """The worker on the running event loop: returns after a graceful shutdown."""
        self._loop = asyncio.get_running_loop()
        self._kick = asyncio.Event()
        self._outcome_event = asyncio.Event()
        self._beat_lock = asyncio.Lock()
        if install_signal_handlers:
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(signum, self._on_signal, signum)
        try:
            await self._serve()
        finally:
            if install_signal_handlers:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    self._loop.remove_signal_handler(signum)

    # MARK: - Lifecycle

    def _on_signal(self, signum: int) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals > 1:
            log.warning("second %s: exiting at once; running steps are not handed back (their leases expire)", name)
            logging.shutdown()
            os._exit(128 + signum)
        self._begin_shutdown(name)

    def _begin_shutdown(self, why: str) -> None:
        if self._stopping:
            return
        self._stopping = True
        log.info("shutting down (%s): claiming nothing more; %d running steps get %.0f s to finish",
                 why, len(self._held), self.grace_period)
        self._wake()

    def _wake(self, claim: bool = False) -> None:
        if claim:
            self._claim_due = True
        if self._kick is not None:
            self._kick.set()

    async def _connect(self, listen: bool = False) -> psycopg.AsyncConnection[Any]:
        conninfo = listen_conninfo(self.conninfo) if listen else self.conninfo
        return await psycopg.AsyncConnection.connect(conninfo, autocommit=True, **connect_options())

    async def _serve(self) -> None:
        listen = await self._start_listening()
        if listen is None:  # stopped before the database answered
            return
        log.info("worker %s serving namespace %s with handlers %s (concurrency %d, lease %.1f s)",
                 self.worker_id, self.namespace, ", ".join(self.handler_names) or "(none)", self.concurrency, self.lease)
        helpers = [
            asyncio.create_task(self._listen_loop(listen), name="orcastra-listen"),
            asyncio.create_task(self._heartbeat_loop(), name="orcastra-heartbeat"),
            asyncio.create_task(self._fence_loop(), name="orcastra-fence"),
            asyncio.create_task(self._report_loop(), name="orcastra-report"),
        ]
        try:
            await self._drive()
        finally:
            for helper in helpers:
                helper.cancel()
            for helper in helpers:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await helper
            await self._hand_back()
            await self._deregister()
            for connection in (self._work, self._report_conn, self._beat):
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()
            await self._pool.close()
            self._work = self._report_conn = self._beat = None
            log.info("worker %s stopped", self.worker_id)

    async def _start_listening(self) -> psycopg.AsyncConnection[Any] | None:
        """Asks for the channel and LISTENs before the first claim; retries until the database answers."""
        delay = 0.1
        while not self._stopping:
            try:
                listen = await self._connect(listen=True)
                cursor = await listen.execute("SELECT orcastra.namespace_channel(%s)", (self.namespace,))
                row = await cursor.fetchone()
                assert row is not None
                self._channel = str(row[0])
                await listen.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                return listen
            except psycopg.Error as error:
                log.warning("cannot start listening yet (%s); retrying in %.1f s", _one_line(error), delay)
                await self._sleep_unless_stopping(delay)
                delay = min(delay * 2, 5.0)
        return None

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        assert self._kick is not None
        self._kick.clear()
        if self._stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._kick.wait(), timeout=seconds)

    async def _listen_loop(self, listen: psycopg.AsyncConnection[Any]) -> None:
        """Turns notifications into wake-ups. They carry no state: any number of them is one wake-up."""
        connection: psycopg.AsyncConnection[Any] | None = listen
        delay = 0.1
        while True:
            try:
                if connection is None or connection.closed:
                    connection = await self._connect(listen=True)
                    await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    log.info("listening again on %s; looking for work at once", self._channel)
                    self._wake(claim=True)  # notifications sent while disconnected are gone
                delay = 0.1
                async for _ in connection.notifies():
                    self._wake(claim=True)
            except asyncio.CancelledError:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()
                raise
            except Exception as error:
                log.warning("the LISTEN connection failed (%s); reconnecting in %.1f s", _one_line(error), delay)
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()
                connection = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # MARK: - Claiming (the drive loop) and reporting (the report loop), each on a connection of its own

    async def _work_connection(self) -> psycopg.AsyncConnection[Any]:
        if self._work is None or self._work.closed or self._work.broken:
            self._work = await self._connect()
        return self._work

    async def _report_connection(self) -> psycopg.AsyncConnection[Any]:
        if self._report_conn is None or self._report_conn.closed or self._report_conn.broken:
            self._report_conn = await self._connect()
        return self._report_conn

    def _free_slots(self) -> int:
        """Slots neither held (claimed, outcome not yet reported) nor reserved by a claim in flight."""
        return max(0, self.concurrency - len(self._held) - self._reserved)

    def _push_outcome(self, outcome: _Outcome) -> None:
        self._outcomes.append(outcome)
        if self._outcome_event is not None:
            self._outcome_event.set()

    async def _coalesce(self) -> None:
        """Under load, waits up to a millisecond for more handlers to finish, so one commit reports many
        steps; a lone step is reported at once (as the Swift worker does)."""
        deadline = time.monotonic() + 0.001
        while time.monotonic() < deadline and any(h.task is not None and not h.task.done() for h in self._held.values()):
            await asyncio.sleep(0.0002)

    async def _report_loop(self) -> None:
        """Reports finished outcomes in batches: whatever finished while the previous report was in flight."""
        assert self._outcome_event is not None
        backoff = 0.0
        while True:
            if not self._outcomes:
                self._outcome_event.clear()
                await self._outcome_event.wait()
                continue
            await self._coalesce()
            batch, self._outcomes = self._outcomes, []
            try:
                ok = await self._report(batch)
            except Exception:
                log.exception("reporting failed unexpectedly")
                self._outcomes = [o for o in batch if not o.held.abandoned] + self._outcomes
                ok = False
            if ok:
                backoff = 0.0
            else:
                backoff = min(max(backoff * 2, 0.05), 5.0)
                await asyncio.sleep(backoff)

    async def _drive(self) -> None:
        assert self._kick is not None
        next_poll = time.monotonic()
        grace_deadline: float | None = None
        backoff = 0.0
        while True:
            self._kick.clear()
            if self._stopping:
                if grace_deadline is None:
                    grace_deadline = time.monotonic() + self.grace_period
                if not self._held:
                    return
                if time.monotonic() >= grace_deadline:
                    log.warning("grace period over: stopping %d running steps and handing them back", len(self._held))
                    return
            if backoff > 0 and not self._stopping:
                await self._sleep_unless_stopping(backoff)
            now = time.monotonic()
            if now >= next_poll:
                self._claim_due = True
            if self._claim_due and not self._stopping and self._free_slots() > 0:
                self._claim_due = False
                ok = await self._claim_until_short()
                next_poll = time.monotonic() + self.poll_interval
                if not ok:
                    self._claim_due = True
                    backoff = min(max(backoff * 2, 0.05), 5.0)
                else:
                    backoff = 0.0
                continue
            timeout = max(next_poll - time.monotonic(), 0.001)
            if grace_deadline is not None:
                timeout = min(timeout, max(grace_deadline - time.monotonic(), 0.001))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=timeout)

    _CLAIM_COLUMNS = ("SELECT step_id, task_id, step_name, attempt, max_attempts, lease_token, template_id, context, parents, "
                      "traceparent, item, item_index "
                      "FROM orcastra.claim_steps(%s, %s, %s::int, %s::int)")

    async def _claim_until_short(self) -> bool:
        """Claims until a claim returns fewer steps than asked or no slot is free. False on a database error."""
        while not self._stopping:
            limit = min(self._free_slots(), self.claim_batch)
            if limit == 0:
                return True
            sent = time.monotonic()
            self._reserved += limit
            try:
                connection = await self._work_connection()
                cursor = await connection.execute(self._CLAIM_COLUMNS, self._claim_params(limit))
                rows = await cursor.fetchall()
            except psycopg.Error as error:
                log.warning("claiming failed (%s); trying again", _one_line(error))
                return False
            finally:
                self._reserved -= limit
            self._accept(rows, sent)
            if len(rows) < limit:
                return True
        return True

    def _claim_params(self, limit: int) -> tuple[Any, ...]:
        return (self.namespace, self.worker_id, limit, int(self.lease * 1000))

    def _accept(self, rows: list[tuple[Any, ...]], sent: float) -> None:
        for step_id, task_id, name, attempt, max_attempts, token, template_id, context, parents, traceparent, item, item_index in rows:
            held = _Held(step_id=step_id, token=token, task_id=task_id, name=name, attempt=attempt,
                         max_attempts=max_attempts, template_id=template_id, context=context,
                         parents=dict(parents or {}), traceparent=traceparent, item=item, item_index=item_index,
                         renewed_until=sent + self.lease)
            self._held[step_id] = held
            self._counters.claimed += 1
            held.task = asyncio.create_task(self._execute(held), name=f"orcastra-step-{step_id}")

    @staticmethod
    def _report_query(batch: list[_Outcome], claim_follows: bool = False) -> tuple[str, tuple[Any, ...]]:
        # With a claim after it in the same transaction, report_steps_then_claim leaves the wake-ups
        # for what it enqueues to that claim, which sends only those still needed, and collects the
        # transaction's other notifications for after the commit (docs/worker-protocol.md).
        function = "report_steps_then_claim" if claim_follows else "report_steps"
        return (f"SELECT step_id, outcome, task_id, task_state FROM orcastra.{function}("
                "%s::bigint[], %s::uuid[], %s::text[]::jsonb[], %s::text[], %s::bigint[])",
                ([o.held.step_id for o in batch], [o.held.token for o in batch],
                 [o.result if o.is_success else None for o in batch],
                 [o.error for o in batch], [None if o.is_success else o.retry_after_ms for o in batch]))

    async def _report(self, batch: list[_Outcome]) -> bool:
        """Reports a batch in one call, refilling the freed slots in the same transaction.

        A refused batch (the data, not the connection) is reported one outcome at a time; a refused
        single outcome becomes a permanent failure that says why. False on a passing fault: the
        outcomes are kept and tried again later (at most MAX_REPORT_TRIES times each).
        """
        batch = [o for o in batch if not o.held.abandoned]
        if not batch:
            return True
        refill = 0
        if not self._stopping:
            # The slots this batch frees, plus any free now; reserved so the drive loop does not fill them too.
            refill = max(0, min(self.claim_batch, self._free_slots() + len(batch)))
        query, params = self._report_query(batch, claim_follows=refill > 0)
        sent = time.monotonic()
        self._reserved += refill
        try:
            connection = await self._report_connection()
            # One round trip and one commit: the report and the refill claim, pipelined in one
            # transaction, which ends by taking the notifications it collected: they are sent after
            # the commit (PostgreSQL serializes the commits of transactions that notify).
            async with connection.pipeline():
                async with connection.transaction():
                    cursor = await connection.execute(query, params)
                    claim = await connection.execute(self._CLAIM_COLUMNS, self._claim_params(refill)) if refill > 0 else None
                    notes = await connection.execute("SELECT orcastra.take_notifications()") if refill > 0 else None
            rows = await cursor.fetchall()
            claimed: list[tuple[Any, ...]] = await claim.fetchall() if claim is not None else []
            pending = await notes.fetchone() if notes is not None else None
        except Exception as error:  # a psycopg error, or a value the driver refuses to send
            self._reserved -= refill
            if protocol.is_passing_fault(error):
                log.warning("reporting %d outcomes failed (%s); trying again", len(batch), _one_line(error))
                kept = []
                for outcome in batch:
                    outcome.tries += 1
                    if outcome.tries >= protocol.MAX_REPORT_TRIES:
                        log.error("giving up reporting step %s of task %s; its lease will expire and it will be retried",
                                  outcome.held.name, outcome.held.task_id)
                        self._forget(outcome.held)
                    else:
                        kept.append(outcome)
                self._outcomes = kept + self._outcomes
                return False
            if len(batch) > 1:
                log.warning("the database refused a batch of %d outcomes (%s); reporting them one by one",
                            len(batch), _one_line(error))
                for outcome in batch:
                    await self._report_alone(outcome)
            else:
                await self._report_alone(batch[0], refusal=error)
            self._wake(claim=True)
            return True
        self._reserved -= refill
        self._reported(batch, rows)
        if refill > 0:
            self._accept(claimed, sent)
            if len(claimed) == refill:
                self._wake(claim=True)  # a full batch: there may be more
        else:
            self._wake(claim=True)
        # Only once the claimed steps are held (and started): a wake-up for this worker's own
        # namespace could otherwise have the drive loop claim into slots the refill already took.
        if pending is not None and pending[0]:
            await self._send_notifications(connection, pending[0])
        return True

    @staticmethod
    async def _send_notifications(connection: psycopg.AsyncConnection[Any], pending: str) -> None:
        """Sends what a committed report-and-claim collected, in a transaction of its own that commits
        without waiting for a flush. Notifications are hints: one lost costs others latency (they
        poll), never work, so a failure is only logged."""
        try:
            await connection.execute("SELECT orcastra.send_notifications(%s)", (pending,))
        except psycopg.Error as error:
            log.debug("sending notifications after a report failed (%s)", _one_line(error))

    async def _report_alone(self, outcome: _Outcome, refusal: Exception | None = None) -> None:
        attempt = outcome
        for _ in range(2):
            if refusal is not None:
                reason = _one_line(refusal)
                attempt = _Outcome(held=outcome.held, error=protocol.error_message(
                    f"result not storable: {reason}" if outcome.is_success
                    else f"the step failed, and its error could not be stored: {reason}"), retry_after_ms=None)
            query, params = self._report_query([attempt])
            try:
                connection = await self._report_connection()
                cursor = await connection.execute(query, params)
                rows = await cursor.fetchall()
                self._reported([attempt], rows)
                return
            except Exception as error:
                if protocol.is_passing_fault(error):
                    outcome.tries += 1
                    self._push_outcome(outcome)
                    return
                if refusal is not None:
                    break
                refusal = error
        log.error("the database refused step %s's outcome (%s); its lease will expire and it will be retried",
                  outcome.held.name, _one_line(refusal) if refusal else "")
        self._forget(outcome.held)

    def _reported(self, batch: list[_Outcome], rows: list[tuple[Any, ...]]) -> None:
        by_id = {o.held.step_id: o for o in batch}
        for step_id, outcome, task_id, task_state in rows:
            reported = by_id.get(step_id)
            self._counters.reported[outcome] = self._counters.reported.get(outcome, 0) + 1
            if reported is None:
                continue
            held = reported.held
            if outcome == protocol.OUTCOME_COMPLETED:
                log.debug("step %s of task %s complete", held.name, task_id)
            elif outcome in (protocol.OUTCOME_WAITING_FOR_RETRY, protocol.OUTCOME_ERROR):
                log.log(logging.ERROR if outcome == protocol.OUTCOME_ERROR else logging.WARNING,
                        "step %s of task %s attempt %d failed (next: %s): %s",
                        held.name, task_id, held.attempt, outcome, reported.error)
            elif outcome == protocol.OUTCOME_IGNORED:
                log.info("step %s of task %s: outcome ignored, its task was cancelled", held.name, task_id)
            else:
                log.warning("step %s of task %s: outcome refused, the lease was lost (the step may run elsewhere)",
                            held.name, task_id)
            if task_state is not None:
                log.log(logging.ERROR if task_state == "error" else logging.INFO, "task %s %s", task_id, task_state)
        for outcome in batch:
            current = self._held.get(outcome.held.step_id)
            if current is outcome.held:
                del self._held[outcome.held.step_id]

    def _forget(self, held: _Held) -> None:
        """Stops heartbeating a step and frees its slot without reporting: its lease expires."""
        held.abandoned = True
        if self._held.get(held.step_id) is held:
            del self._held[held.step_id]
        if held.task is not None and not held.task.done():
            held.task.cancel()
        self._outcomes = [o for o in self._outcomes if o.held is not held]
        self._wake(claim=True)

    async def _hand_back(self) -> None:
        """At shutdown: stops what still runs and returns the steps held with release_steps."""
        held = list(self._held.values())
        if not held:
            return
        for h in held:
            h.abandoned = True
            if h.task is not None and not h.task.done():
                h.task.cancel()
        self._held.clear()
        self._outcomes.clear()
        try:
            connection = await self._work_connection()
            cursor = await connection.execute("SELECT step_id FROM orcastra.release_steps(%s::bigint[], %s::uuid[])",
                                              ([h.step_id for h in held], [h.token for h in held]))
            released = await cursor.fetchall()
            log.info("handed back %d of %d steps", len(released), len(held))
        except psycopg.Error as error:
            log.warning("handing back %d steps failed (%s); their leases will expire", len(held), _one_line(error))

    # MARK: - Running handlers

    async def _execute(self, held: _Held) -> None:
        policy: dict[str, Any] | None = None
        outcome: _Outcome
        try:
            # An instance `charge[3]` runs its fan-out step `charge`'s definition.
            defined = held.name.rsplit("[", 1)[0] if held.item_index is not None else held.name
            spec = await self._step_definition(held.template_id, defined)
            if spec is None:
                raise Permanent(f"the template (id {held.template_id}) has no step {defined}")
            policy = spec.get("retry")
            handler_name = spec.get("handler")
            function = self._handlers.get(handler_name) if isinstance(handler_name, str) else None
            if function is None:
                what = f"no handler named {handler_name}" if handler_name else "this Python worker runs no command steps"
                raise RuntimeError(f"{what} is registered in worker {self.worker_id} (namespace {self.namespace}); "
                                   f"it has: {', '.join(self.handler_names)}")
            assert isinstance(handler_name, str)
            timeout_ms = int(spec.get("timeout_ms", 300_000))
            if handler_name in self._transactional:
                await self._run_in_transaction(function, held, handler_name, timeout_ms)
                return  # settled in its transaction; a failure raised after the rollback is reported below
            step = Step(step_id=held.step_id, task_id=held.task_id, name=held.name, handler=handler_name,
                        attempt=held.attempt, max_attempts=held.max_attempts, context=held.context,
                        parents=held.parents, timeout=timeout_ms / 1000, worker=self, traceparent=held.traceparent,
                        item=held.item, index=held.item_index)
            try:
                async with asyncio.timeout(timeout_ms / 1000) as scope:
                    value = await self._call(function, step)
            except TimeoutError:
                if not scope.expired():
                    raise
                raise _TimedOut(f"the handler timed out after {protocol.duration_text(timeout_ms)}") from None
            outcome = _Outcome(held=held, result=protocol.result_json(value))
        except asyncio.CancelledError:
            if held.abandoned:
                return  # lost, cancelled, fenced or handed back: nothing to report
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the event loop is going away
            # The handler's own CancelledError (not ours): a failed attempt like any other, so the
            # step is reported rather than heartbeated for ever.
            outcome = _Outcome(held=held, error="CancelledError: the handler was cancelled",
                               retry_after_ms=protocol.retry_after_ms(policy, held.attempt))
        except (Permanent, protocol.UnstorableResult) as failure:
            outcome = _Outcome(held=held, error=protocol.error_message(str(failure) or type(failure).__name__))
        except _TimedOut as failure:
            outcome = _Outcome(held=held, error=str(failure),
                               retry_after_ms=protocol.retry_after_ms(policy, held.attempt))
        except BaseException as failure:  # any other exception (even SystemExit from a handler) is retryable
            message = f"{type(failure).__name__}: {failure}" if str(failure) else type(failure).__name__
            outcome = _Outcome(held=held, error=protocol.error_message(message),
                               retry_after_ms=protocol.retry_after_ms(policy, held.attempt))
        if held.abandoned:
            return
        self._push_outcome(outcome)

    async def _run_in_transaction(self, function: Handler, held: _Held, handler_name: str, timeout_ms: int) -> None:
        """Runs a transactional handler in a transaction on a pooled connection of its own, then completes
        the step there with ``complete_step_in_transaction`` and commits, in one round trip.

        ``complete_step_in_transaction`` is report_steps for this one step (the lease check, the
        result, the children, the task) and raises OR005 unless it completed the step; the COMMIT
        pipelined after it is then skipped and the transaction rolls back. The step's row is locked
        only by that last statement, so heartbeats (on the worker's own connection) never wait for
        the handler. Raises, after rolling back, when the handler failed, timed out or was
        cancelled: the failure is reported like any other, in a new transaction.
        """
        connection = await self._pool.acquire()
        try:
            await connection.execute("BEGIN")
            step = Step(step_id=held.step_id, task_id=held.task_id, name=held.name, handler=handler_name,
                        attempt=held.attempt, max_attempts=held.max_attempts, context=held.context,
                        parents=held.parents, timeout=timeout_ms / 1000, worker=self, traceparent=held.traceparent,
                        item=held.item, index=held.item_index, connection=connection)
            try:
                # On a timeout (or a lost lease, a cancelled task, the grace period: _forget cancels this
                # task) the statement in flight is cancelled on the server: psycopg sends a cancel
                # request when its await is interrupted; _roll_back makes sure.
                async with asyncio.timeout(timeout_ms / 1000) as scope:
                    value = await function(step)
            except TimeoutError:
                if not scope.expired():
                    raise
                raise _TimedOut(f"the handler timed out after {protocol.duration_text(timeout_ms)}") from None
            status = connection.info.transaction_status
            if status == _INERROR:
                raise RuntimeError(f"a statement of handler {handler_name} failed and the handler went on: "
                                   "the step's transaction was aborted")
            if status != _INTRANS:
                raise Permanent(f"handler {handler_name} ended the step's transaction itself (COMMIT or ROLLBACK): "
                                "the step cannot be completed together with its writes")
            result = protocol.result_json(value)
            # The same transaction claims steps into the slot it frees (and any free now), as the
            # report path does: claim_steps never waits. Reserved so the drive loop does not fill
            # them too. Should the COMMIT's fate be unknown, the steps claimed here belong to
            # nobody until their leases run out and an orchestrator recovers them.
            refill = 0 if self._stopping else max(0, min(self.claim_batch, self._free_slots() + 1))
            self._reserved += refill
            sent = time.monotonic()
            try:
                async with connection.pipeline():
                    await connection.execute("SELECT orcastra.complete_step_in_transaction(%s, %s, %s::text::jsonb)",
                                             (held.step_id, held.token, result))
                    claim = await connection.execute(self._CLAIM_COLUMNS, self._claim_params(refill)) if refill else None
                    await connection.execute("COMMIT")
                claimed: list[tuple[Any, ...]] = await claim.fetchall() if claim is not None else []
            except psycopg.Error as error:
                self._reserved -= refill
                if error.sqlstate != protocol.SQLSTATE_STEP_NOT_COMPLETED:
                    raise
                await connection.execute("ROLLBACK")
                answer = error.diag.message_detail or protocol.OUTCOME_LEASE_LOST
                if answer == protocol.OUTCOME_IGNORED:
                    # The rollback took back the step's cancellation too: record it on its own (any
                    # outcome of a cancelled task's step cancels the step), as the Swift worker does.
                    cancelled = _Outcome(held=held, error="task cancelled while running", retry_after_ms=None)
                    with contextlib.suppress(psycopg.Error):
                        await connection.execute(*self._report_query([cancelled]))
                self._settled_in_transaction(held, answer)
                return
            except BaseException:
                self._reserved -= refill
                raise
            self._reserved -= refill
            self._settled_in_transaction(held, protocol.OUTCOME_COMPLETED, wake=False)
            self._accept(claimed, sent)
            if not refill or len(claimed) == refill:
                self._wake(claim=True)  # a slot freed without a refill, or a full batch: there may be more
        except BaseException:
            await self._roll_back(connection)
            raise
        finally:
            await self._pool.release(connection)

    @staticmethod
    async def _roll_back(connection: psycopg.AsyncConnection[Any]) -> None:
        """Rolls a step's transaction back, cancelling a statement still running; closes the connection if that fails."""
        if connection.closed:
            return
        try:
            if connection.info.transaction_status == _ACTIVE:
                await asyncio.wait_for(connection.cancel_safe(), 5)
            if connection.info.transaction_status in (_INTRANS, _INERROR, _ACTIVE):
                await asyncio.wait_for(connection.execute("ROLLBACK"), 5)
        except BaseException as error:  # even a second cancellation: the connection must not go back dirty
            log.warning("rolling back a step's transaction failed (%s); closing its connection", _one_line(error))
            with contextlib.suppress(Exception):
                await connection.close()
            if isinstance(error, asyncio.CancelledError):
                raise

    def _settled_in_transaction(self, held: _Held, answer: str, wake: bool = True) -> None:
        """The step was completed in its handler's transaction, or found no longer ours there (rolled back)."""
        self._counters.reported[answer] = self._counters.reported.get(answer, 0) + 1
        if answer == protocol.OUTCOME_COMPLETED:
            log.debug("step %s of task %s complete (in its handler's transaction)", held.name, held.task_id)
        elif answer == protocol.OUTCOME_IGNORED:
            log.info("step %s of task %s rolled back: its task was cancelled", held.name, held.task_id)
        else:
            log.warning("step %s of task %s rolled back: the lease was lost (the step may run elsewhere)",
                        held.name, held.task_id)
        held.abandoned = True  # nothing more is reported or heartbeated for it
        if self._held.get(held.step_id) is held:
            del self._held[held.step_id]
        if wake:
            self._wake(claim=True)

    async def _call(self, function: Handler, step: Step) -> Any:
        if inspect.iscoroutinefunction(function):
            return await function(step)
        value = await _in_thread(function, step)
        if inspect.isawaitable(value):
            return await value
        return value

    async def _step_definition(self, template_id: int, name: str) -> dict[str, Any] | None:
        steps = self._templates.get(template_id)
        if steps is None:
            async with self._beat_connection() as connection:
                # Through the protocol function: a worker role has no SELECT on tables (docs/security.md).
                cursor = await connection.execute("SELECT orcastra.template_definition(%s, %s)", (template_id, self.namespace))
                row = await cursor.fetchone()
            if row is None or row[0] is None:
                raise Permanent(f"no template with id {template_id}")
            steps = {s["name"]: s for s in row[0]["steps"]}
            self._templates[template_id] = steps  # a registered template is immutable
        return steps.get(name)

    # MARK: - Heartbeats, fencing and the registry (the heartbeat connection)

    @contextlib.asynccontextmanager
    async def _beat_connection(self) -> Any:
        assert self._beat_lock is not None
        async with self._beat_lock:
            if self._beat is None or self._beat.closed or self._beat.broken:
                self._beat = await self._connect()
            yield self._beat

    @property
    def _registry_interval(self) -> float:
        return min(max(self.lease / 3, 1.0), 10.0)

    async def _heartbeat_loop(self) -> None:
        try:
            await self._register()
            await self._check_namespace()
        except Exception:
            log.exception("registering the worker failed")
        step_interval = self.lease / 3
        beat_interval = self._registry_interval
        slack = beat_interval / 10
        next_steps = time.monotonic() + step_interval
        next_beat = time.monotonic() + beat_interval
        while True:
            await asyncio.sleep(max(min(next_steps, next_beat) - time.monotonic(), 0))
            woke = time.monotonic()
            steps_due = woke >= next_steps
            beat_due = woke >= next_beat - slack
            try:
                if steps_due:
                    await self._heartbeat()
                if beat_due:
                    await self._beat_registry()
            except Exception:  # never let one bad round end the heartbeats; fencing covers the gap
                log.exception("heartbeat round failed")
            now = time.monotonic()
            if steps_due:
                next_steps = now + step_interval
            if beat_due:
                next_beat = now + beat_interval

    async def _heartbeat(self) -> None:
        leases = [h for h in self._held.values() if not h.abandoned]
        if not leases:
            return
        sent = time.monotonic()
        try:
            async with self._beat_connection() as connection:
                cursor = await connection.execute(
                    "SELECT step_id, alive FROM orcastra.heartbeat_steps(%s::bigint[], %s::uuid[], %s::int)",
                    ([h.step_id for h in leases], [h.token for h in leases], int(self.lease * 1000)))
                rows = await cursor.fetchall()
        except psycopg.Error as error:
            log.warning("heartbeat failed (%s)", _one_line(error))
            return
        alive = dict(rows)
        for held in leases:
            if self._held.get(held.step_id) is not held:
                continue
            if alive.get(held.step_id):
                held.renewed_until = max(held.renewed_until, sent + self.lease)
            else:
                log.info("step %s of task %s stopped: its task was cancelled or its lease lost", held.name, held.task_id)
                self._forget(held)

    async def _fence_loop(self) -> None:
        """Stops every step whose lease could not be renewed in time: no attempt outlives its lease here."""
        margin = min(self.lease / 10, 1.0)
        while True:
            now = time.monotonic()
            for held in list(self._held.values()):
                if now >= held.renewed_until - margin:
                    log.error("stopped step %s of task %s: its lease could not be renewed (the database did not answer "
                              "heartbeats); it may run elsewhere", held.name, held.task_id)
                    self._forget(held)
            if self._held:
                earliest = min(h.renewed_until for h in self._held.values()) - margin
                pause = min(max(earliest - time.monotonic(), 0.005), 0.1)
            else:
                pause = 1.0
            await asyncio.sleep(pause)

    async def _register(self) -> None:
        self._registration.attempted = True
        try:
            async with self._beat_connection() as connection:
                cursor = await connection.execute(
                    "SELECT started_at, displaced FROM orcastra.register_worker(%s, %s, %s, %s::int, %s, %s::int, %s::int, %s)",
                    (self.worker_id, self.namespace, socket.gethostname(), os.getpid(), self.version, self.concurrency,
                     int(self._registry_interval * 1000), self._registration.started_at))
                row = await cursor.fetchone()
            assert row is not None
            self._registration.started_at = row[0]
            if self._registration.warned_unavailable:
                log.info("registered in the worker registry")
            self._registration.registered = True
            self._registration.warned_unavailable = False
            if row[1]:
                log.warning("another live worker (%s) was registered under this worker's id: two running workers share "
                            "the name %s, which makes leases, logs and `orcastra worker list` ambiguous", row[1], self.worker_id)
        except psycopg.Error as error:
            self._registration.registered = False
            self._registry_failed(error)

    async def _beat_registry(self) -> None:
        if not self._registration.registered:
            await self._register()
            return
        try:
            async with self._beat_connection() as connection:
                cursor = await connection.execute("SELECT orcastra.heartbeat_worker(%s, %s::int)", (self.worker_id, len(self._held)))
                row = await cursor.fetchone()
            if row is not None and not row[0]:
                log.info("this worker's registry row is gone; registering again")
                await self._register()
        except psycopg.Error as error:
            self._registry_failed(error)

    def _registry_failed(self, error: psycopg.Error) -> None:
        if error.sqlstate in ("42P01", "42883"):
            if not self._registration.warned_unavailable:
                log.warning("the database has no worker registry (run `orcastra migrate`); working without it")
                self._registration.warned_unavailable = True
        else:
            log.warning("the worker registry could not be updated (%s)", _one_line(error))

    async def _check_namespace(self) -> None:
        try:
            async with self._beat_connection() as connection:
                cursor = await connection.execute("SELECT * FROM orcastra.step_namespaces()")
                used = [str(r[0]) for r in await cursor.fetchall()]
        except psycopg.Error:
            return
        if self.namespace not in used:
            log.warning("no registered template has steps in namespace %s, so this worker gets no work until one does; "
                        "namespaces in use: %s", self.namespace, ", ".join(used) or "(none)")

    async def _deregister(self) -> None:
        if not self._registration.attempted or self._beat is None or self._beat.closed:
            return
        try:
            await asyncio.wait_for(self._beat.execute("SELECT orcastra.deregister_worker(%s)", (self.worker_id,)), 5)
        except (psycopg.Error, TimeoutError) as error:
            log.info("could not leave the worker registry (%s); the row turns stale and is pruned later", error)


class _TimedOut(Exception):
    pass


_IDLE = psycopg.pq.TransactionStatus.IDLE
_ACTIVE = psycopg.pq.TransactionStatus.ACTIVE
_INTRANS = psycopg.pq.TransactionStatus.INTRANS
_INERROR = psycopg.pq.TransactionStatus.INERROR


class _ConnectionPool:
    """Transactional steps' connections: opened on first use, one per running transactional step, at
    most ``size`` kept idle (the worker's concurrency). Never the worker's claim, report or heartbeat
    connections. A connection goes back only when idle (no transaction open) and healthy."""

    def __init__(self, conninfo: str, size: int) -> None:
        self.conninfo = conninfo
        self.size = size
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._all: set[psycopg.AsyncConnection[Any]] = set()

    async def acquire(self) -> psycopg.AsyncConnection[Any]:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and not connection.broken and connection.info.transaction_status == _IDLE:
                return connection
            await self._discard(connection)
        connection = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True, **connect_options())
        self._all.add(connection)
        return connection

    async def release(self, connection: psycopg.AsyncConnection[Any]) -> None:
        if (not connection.closed and not connection.broken and connection.info.transaction_status == _IDLE
                and len(self._idle) < self.size):
            self._idle.append(connection)
        else:
            await self._discard(connection)

    async def _discard(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self._all.discard(connection)
        with contextlib.suppress(Exception):
            await connection.close()

    async def close(self) -> None:
        """At shutdown: closes every connection, in use or not (the server rolls back what is open)."""
        connections, self._all, self._idle = list(self._all), set(), []
        for connection in connections:
            with contextlib.suppress(Exception):
                await connection.close()


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


T = TypeVar("T")


def _in_thread(function: Callable[[Step], T], step: Step) -> Awaitable[T]:
    """Runs a sync handler in a daemon thread of its own.

    A Python thread cannot be stopped: after a timeout, a lost lease or the grace period its result
    is dropped, but the thread runs until the function returns. Being a daemon thread, it does not
    keep the process from exiting.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def target() -> None:
        try:
            value: Any = function(step)
            error: BaseException | None = None
        except BaseException as failure:  # handed to the event loop
            value, error = None, failure
        with contextlib.suppress(RuntimeError):  # the loop is gone: the worker has exited
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=target, name=f"orcastra-step-{step.step_id}", daemon=True).start()
    return future
