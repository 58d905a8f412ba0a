"""Retries, permanent failures and timeouts: a Python worker plus an orchestrator (which enqueues due retries)."""

import signal
import time
from typing import Any

import psycopg

from conftest import Cluster, steps_of, transitions
from orcastra import Client

STEPS = """
  - name: flaky
    handler: t.fail_until
    retry: {max_attempts: 3, backoff: fixed, initial_delay: 100ms, max_delay: 100ms, jitter: false}
  - name: exhausted
    handler: t.always_fail
    retry: {max_attempts: 2, backoff: none}
  - name: permanent
    handler: t.permanent
    retry: {max_attempts: 5, backoff: none}
  - name: after_flaky
    handler: t.echo
    depends_on: [flaky]
"""


def test_retries_and_permanent_failures(cluster: Cluster, client: Client, db: psycopg.Connection[Any]) -> None:
    reference = cluster.register("retries", STEPS)
    cluster.orchestrator()
    cluster.python_worker()
    submitted = client.submit(reference, {"succeed_on": 3})
    task = client.wait(submitted.task_id, timeout=30)
    steps = steps_of(db, submitted.task_id)
    # Retried twice, then succeeded; its child saw the successful attempt's result.
    assert steps["flaky"]["state"] == "complete" and steps["flaky"]["attempts"] == 3
    assert steps["flaky"]["result"] == {"succeeded_on": 3}
    moves = [(a, b) for a, b, _, _ in transitions(db, steps["flaky"]["id"])]
    assert moves.count(("in_progress", "waiting_for_retry")) == 2
    assert steps["after_flaky"]["result"]["parents"] == {"flaky": {"succeeded_on": 3}}
    # A retryable failure uses up its attempts; a permanent one stops at once.
    assert steps["exhausted"]["state"] == "error" and steps["exhausted"]["attempts"] == 2
    assert transitions(db, steps["exhausted"]["id"])[-1][2] == "attempts exhausted (2 of 2)"
    assert steps["permanent"]["state"] == "error" and steps["permanent"]["attempts"] == 1
    assert task.state == "error" and task.step("flaky").state == "complete"


TIMEOUTS = """
  - name: async_slow
    handler: t.sleep
    timeout: 300ms
    retry: {max_attempts: 2, backoff: none}
  - name: sync_slow
    handler: t.sync_sleep
    timeout: 300ms
    retry: {max_attempts: 2, backoff: none}
"""


def test_timeouts_from_the_template(cluster: Cluster, client: Client, db: psycopg.Connection[Any]) -> None:
    reference = cluster.register("timeouts", TIMEOUTS)
    cluster.orchestrator()
    worker = cluster.python_worker(grace=30)
    started = time.monotonic()
    submitted = client.submit(reference, {"sleep_ms": 20_000})
    task = client.wait(submitted.task_id, timeout=30)
    assert time.monotonic() - started < 10
    assert task.state == "error"
    for name in ("async_slow", "sync_slow"):
        step = task.step(name)
        assert (step.state, step.attempts) == ("error", 2), step
        assert step.last_error == "the handler timed out after 300ms"
    # The sync handlers' threads still sleep (Python cannot stop a thread), but they hold no slot
    # and do not keep the worker from a prompt, clean exit.
    signalled = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0
    assert time.monotonic() - signalled < 3
    assert db.execute("SELECT count(*) FROM orcastra.workers WHERE id = %s", (worker.worker_id,)).fetchone() == (0,)  # type: ignore[attr-defined]
