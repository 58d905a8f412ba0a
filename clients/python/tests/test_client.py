"""The client: submit (idempotency, priority, run_at), task, wait (LISTEN, not polling), cancel."""

import datetime as dt
import threading
import time
import uuid
from typing import Any

import psycopg
import pytest

from conftest import Cluster
from orcastra import Client, SubmitRefused, TaskNotFound, WaitTimedOut

ONE = "  - {name: only, handler: t.echo}\n"


def test_submit_is_idempotent_and_carries_priority_and_run_at(cluster: Cluster, client: Client,
                                                             db: psycopg.Connection[Any]) -> None:
    reference = cluster.register("submit", ONE)
    first = client.submit(reference, {"n": 1}, idempotency_key="order-7", priority=5)
    assert first.created and first.state == "in_progress" and first.template_version == "1.0.0"
    again = client.submit(reference, {"n": 2}, idempotency_key="order-7")
    assert (again.task_id, again.created, again.context_differs) == (first.task_id, False, True)
    same = client.submit(reference, {"n": 1}, idempotency_key="order-7")
    assert (same.task_id, same.context_differs) == (first.task_id, False)
    assert db.execute("SELECT priority FROM orcastra.steps WHERE task_id = %s", (first.task_id,)).fetchone() == (5,)
    pinned = client.submit(f"{reference}@1.0.0")
    assert pinned.created and pinned.task_id != first.task_id

    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    scheduled = client.submit(reference, {"n": 3}, run_at=later)
    info = client.task(scheduled.task_id)
    assert info.state == "pending" and info.run_at == later and info.context == {"n": 3}
    assert info.step("only").state == "pending"
    assert info.template == f"{reference}@1.0.0"
    assert client.cancel(scheduled.task_id) == "cancelled"
    assert client.cancel(scheduled.task_id) == "cancelled"  # already: unchanged

    with pytest.raises(SubmitRefused) as refused:
        client.submit(f"{cluster.namespace}/nope")
    assert refused.value.sqlstate == "OR003"
    with pytest.raises(ValueError):
        client.submit("no-slash")
    with pytest.raises(TaskNotFound):
        client.task(uuid.uuid4())
    with pytest.raises(TaskNotFound):
        client.cancel(uuid.uuid4())
    for t in (first.task_id, pinned.task_id):
        client.cancel(t)


def test_wait_is_woken_by_the_task_event_not_by_polling(cluster: Cluster, client: Client) -> None:
    reference = cluster.register("wait", "  - {name: a, handler: t.sleep}\n  - {name: b, handler: t.echo, depends_on: [a]}\n")
    task = client.submit(reference, {"sleep_ms": 800}).task_id
    with pytest.raises(WaitTimedOut) as timed_out:
        client.wait(task, timeout=0.3)
    assert timed_out.value.state == "in_progress"
    cluster.python_worker()
    # The safety-net re-check is an hour away: only the NOTIFY can end this wait in time.
    started = time.monotonic()
    done = client.wait(task, timeout=20, recheck=3600)
    assert done.state == "complete" and time.monotonic() - started < 10
    assert done.results["b"]["parents"] == {"a": {"slept_ms": 800, "shutting_down": False}}


def test_wait_returns_when_another_client_cancels(cluster: Cluster, database_url: str) -> None:
    reference = cluster.register("waitcancel", ONE)  # no worker: the task stays in progress
    with Client(database_url) as waiter, Client(database_url) as other:
        task = waiter.submit(reference).task_id
        timer = threading.Timer(0.5, other.cancel, args=(task,))
        timer.start()
        started = time.monotonic()
        assert waiter.wait(task, timeout=20, recheck=3600).state == "cancelled"
        assert time.monotonic() - started < 5
        timer.join()


def test_submit_stores_the_traceparent_given_or_a_new_one(cluster: Cluster, client: Client,
                                                         db: psycopg.Connection[Any]) -> None:
    reference = cluster.register("traced", ONE)
    given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    traced = client.submit(reference, traceparent=given)
    assert db.execute("SELECT traceparent FROM orcastra.tasks WHERE id = %s", (traced.task_id,)).fetchone() == (given,)
    fresh = client.submit(reference)
    (value,) = db.execute("SELECT traceparent FROM orcastra.tasks WHERE id = %s", (fresh.task_id,)).fetchone()  # type: ignore[misc]
    assert value.startswith("00-") and value.endswith("-01") and value.split("-")[1] != given.split("-")[1]
    with pytest.raises(SubmitRefused) as refused:
        client.submit(reference, traceparent="00-not-a-trace-01")
    assert refused.value.sqlstate == "OR025"


def test_prepared_statements_off_for_pgbouncer(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ORCASTRA_PREPARED_STATEMENTS=off nothing is prepared on the server, however often a
    statement runs (psycopg prepares after the fifth run): PgBouncer in transaction mode before 1.21
    could not carry a prepared statement to the next transaction."""
    def prepared_after_runs() -> int:
        client = Client(database_url)
        try:
            for _ in range(8):
                client._execute("SELECT 1 WHERE %s::int = 1", (1,))
            return int(client._execute("SELECT count(*) FROM pg_prepared_statements", ())[0][0])
        finally:
            client.close()

    assert prepared_after_runs() > 0  # the default: psycopg prepares what runs often
    monkeypatch.setenv("ORCASTRA_PREPARED_STATEMENTS", "off")
    assert prepared_after_runs() == 0
