"""Faults and company: kill -9 mid-step, a Swift worker beside a Python one, cancellation mid-step."""

import json
import signal
import subprocess
from typing import Any

import psycopg

from conftest import BIN, Cluster, steps_of, transitions, wait_until
from orcastra import Client


def owner(db: psycopg.Connection[Any], step_id: int) -> Any:
    row = db.execute("SELECT state, lease_owner FROM orcastra.steps WHERE id = %s", (step_id,)).fetchone()
    return row


def test_kill_9_mid_step_a_swift_worker_finishes_it_after_the_lease(
        cluster: Cluster, client: Client, db: psycopg.Connection[Any]) -> None:
    reference = cluster.register("killed", "  - {name: slow, handler: orcastra.sleep, retry: {max_attempts: 3}}\n")
    python = cluster.python_worker(lease=2)
    task = client.submit(reference, {"sleep_ms": 3000}).task_id
    step_id = steps_of(db, task)["slow"]["id"]
    wait_until(lambda: owner(db, step_id) == ("in_progress", python.worker_id), what="the Python worker running the step")  # type: ignore[attr-defined]
    python.send_signal(signal.SIGKILL)
    python.wait(timeout=5)
    cluster.orchestrator()
    swift = cluster.swift_worker()
    done = client.wait(task, timeout=30)
    assert done.state == "complete"
    step = done.step("slow")
    assert step.attempts == 2 and step.result == {"slept_ms": 3000}
    claims = [meta["worker"] for a, b, _, meta in transitions(db, step_id) if b == "in_progress"]
    assert claims == [python.worker_id, swift.worker_id]  # type: ignore[attr-defined]
    reasons = [reason for _, _, reason, _ in transitions(db, step_id)]
    assert f"lease expired: attempt 1 lost (worker {python.worker_id})" in reasons, reasons  # type: ignore[attr-defined]


LINEAR = """
  - {name: a, handler: orcastra.sleep}
  - {name: b, handler: orcastra.sleep, depends_on: [a]}
  - {name: c, handler: orcastra.sleep, depends_on: [b]}
  - {name: d, handler: orcastra.sleep, depends_on: [c]}
"""


def test_a_python_and_a_swift_worker_share_a_namespace_each_step_runs_once(
        cluster: Cluster, client: Client, db: psycopg.Connection[Any]) -> None:
    reference = cluster.register("shared", LINEAR)
    python = cluster.python_worker(concurrency=4)
    swift = cluster.swift_worker("--concurrency", "4")
    tasks = [client.submit(reference, {"sleep_ms": 5}).task_id for _ in range(40)]
    for t in tasks:
        assert client.wait(t, timeout=60).state == "complete"
    rows = db.execute(
        "SELECT s.id, s.attempts, (SELECT array_agg(x.metadata->>'worker') FROM orcastra.step_transitions x "
        "                            WHERE x.step_id = s.id AND x.to_state = 'in_progress') "
        "FROM orcastra.steps s WHERE s.task_id = ANY(%s)", (tasks,)).fetchall()
    assert len(rows) == 160
    workers: dict[str, int] = {}
    for _, attempts, claimed_by in rows:
        assert attempts == 1 and len(claimed_by) == 1, claimed_by  # claimed once, run once
        workers[claimed_by[0]] = workers.get(claimed_by[0], 0) + 1
    assert set(workers) == {python.worker_id, swift.worker_id}, workers  # type: ignore[attr-defined]
    # Both appear in the registry, the Python one with its language and version.
    listed = json.loads(subprocess.run([str(BIN / "orcastra"), "worker", "list", "--json", "--database-url", cluster.url],
                                       check=True, capture_output=True, text=True, timeout=30).stdout)
    text = json.dumps(listed)
    assert python.worker_id in text and swift.worker_id in text  # type: ignore[attr-defined]
    assert "orcastra-python 0.1.0 (CPython" in text


def test_cancelling_a_task_stops_its_running_python_step(
        cluster: Cluster, client: Client, db: psycopg.Connection[Any]) -> None:
    reference = cluster.register("cancel", "  - {name: long, handler: t.sleep}\n  - {name: next, handler: t.echo, depends_on: [long]}\n")
    cluster.python_worker(lease=1.5)
    task = client.submit(reference, {"sleep_ms": 30_000}).task_id
    step_id = steps_of(db, task)["long"]["id"]
    wait_until(lambda: owner(db, step_id)[0] == "in_progress", what="the step running")
    assert client.cancel(task) == "cancelled"
    # The worker's next heartbeat (every 0.5 s) learns it, stops the handler and reports nothing.
    wait_until(lambda: owner(db, step_id)[0] == "cancelled", timeout=5, what="the running step cancelled")
    assert transitions(db, step_id)[-1][2] == "task cancelled while running"
    info = client.task(task)
    assert info.state == "cancelled" and info.step("next").state == "cancelled"


def test_a_step_whose_lease_cannot_be_renewed_is_stopped_before_the_lease_runs_out(
        cluster: Cluster, client: Client, db: psycopg.Connection[Any], database_url: str) -> None:
    reference = cluster.register("fenced", "  - {name: slow, handler: t.sleep, retry: {max_attempts: 3, backoff: none}}\n")
    cluster.orchestrator()
    python = cluster.python_worker(lease=1.5)
    task = client.submit(reference, {"sleep_ms": 2500}).task_id
    step_id = steps_of(db, task)["slow"]["id"]
    wait_until(lambda: owner(db, step_id)[0] == "in_progress", what="the step running")
    # Hold the step's row lock: heartbeats (every 0.5 s) wait on it, so the lease cannot be renewed.
    with psycopg.connect(database_url) as blocker:
        blocker.execute("SELECT 1 FROM orcastra.steps WHERE id = %s FOR UPDATE", (step_id,))
        wait_until(lambda: "lease could not be renewed" in cluster.logs(), timeout=5, what="the worker to fence the step")
        blocker.rollback()
    # Attempt 1 was stopped (had it finished at 2.5 s, its late report would have completed the step);
    # the lease expires, an orchestrator records the lost attempt, and attempt 2 completes.
    done = client.wait(task, timeout=30)
    assert done.state == "complete" and done.step("slow").attempts == 2
    reasons = [reason for _, _, reason, _ in transitions(db, step_id)]
    assert f"lease expired: attempt 1 lost (worker {python.worker_id})" in reasons, reasons  # type: ignore[attr-defined]
    assert python.poll() is None


def test_heartbeats_keep_a_step_longer_than_its_lease(cluster: Cluster, client: Client, db: psycopg.Connection[Any]) -> None:
    reference = cluster.register("long", "  - {name: long, handler: t.sync_sleep, retry: {max_attempts: 3}}\n")
    cluster.orchestrator()  # would recover the lease if the heartbeats (every 0.5 s) did not renew it
    python = cluster.python_worker(lease=1.5)
    task = client.submit(reference, {"sleep_ms": 4000}).task_id
    done = client.wait(task, timeout=30)
    assert done.state == "complete" and done.step("long").attempts == 1
    claims = [meta["worker"] for _, b, _, meta in transitions(db, steps_of(db, task)["long"]["id"]) if b == "in_progress"]
    assert claims == [python.worker_id]  # type: ignore[attr-defined]
