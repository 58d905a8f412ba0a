"""SIGTERM with steps in flight: no claims after the signal, running steps finish or are handed back."""

import signal
import time
from typing import Any

import psycopg

from conftest import Cluster, steps_of, transitions, wait_until
from orcastra import Client

STEP = "  - {name: work, handler: t.sleep, retry: {max_attempts: 3}}\n"


def running(db: psycopg.Connection[Any], namespace: str) -> int:
    (count,) = db.execute("SELECT count(*) FROM orcastra.steps WHERE namespace = %s AND state = 'in_progress'",
                          (namespace,)).fetchone()  # type: ignore[misc]
    return int(count)


def test_sigterm_lets_running_steps_finish_and_claims_nothing_more(
        cluster: Cluster, client: Client, db: psycopg.Connection[Any]) -> None:
    reference = cluster.register("drain", STEP)
    worker = cluster.python_worker(concurrency=2, grace=20)
    tasks = [client.submit(reference, {"sleep_ms": 1500}).task_id for _ in range(6)]
    wait_until(lambda: running(db, cluster.namespace) == 2, what="two steps running")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0
    states = sorted(steps_of(db, t)["work"]["state"] for t in tasks)
    assert states == ["complete"] * 2 + ["enqueued"] * 4, states
    for t in tasks:
        step = steps_of(db, t)["work"]
        if step["state"] == "complete":
            assert step["result"] == {"slept_ms": 1500, "shutting_down": True}
        else:
            assert step["attempts"] == 0  # never claimed
    assert db.execute("SELECT count(*) FROM orcastra.workers WHERE id = %s",
                      (worker.worker_id,)).fetchone() == (0,)  # type: ignore[attr-defined]


def test_sigterm_hands_back_steps_still_running_after_the_grace_period(
        cluster: Cluster, client: Client, db: psycopg.Connection[Any]) -> None:
    reference = cluster.register("handback", STEP)
    worker = cluster.python_worker(concurrency=2, grace=0.5)
    tasks = [client.submit(reference, {"sleep_ms": 30_000}).task_id for _ in range(2)]
    wait_until(lambda: running(db, cluster.namespace) == 2, what="two steps running")
    signalled = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0
    assert time.monotonic() - signalled < 3
    for t in tasks:
        step = steps_of(db, t)["work"]
        assert (step["state"], step["attempts"], step["lease_token"]) == ("enqueued", 0, None)
        assert transitions(db, step["id"])[-1][2] == "handed back by a worker shutting down"
    # Handed back, not lost: a new worker claims them again at once (the hand-back notified the namespace).
    cluster.python_worker(concurrency=2)
    wait_until(lambda: running(db, cluster.namespace) == 2, what="the handed-back steps running again")
    for t in tasks:
        assert client.cancel(t) == "cancelled"


def test_a_second_signal_exits_at_once(cluster: Cluster, client: Client, db: psycopg.Connection[Any]) -> None:
    reference = cluster.register("twice", STEP)
    worker = cluster.python_worker(concurrency=1, grace=60)
    client.submit(reference, {"sleep_ms": 30_000})
    wait_until(lambda: running(db, cluster.namespace) == 1, what="a step running")
    worker.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert worker.poll() is None  # waiting for its step within the grace period
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=5) == 128 + signal.SIGTERM
