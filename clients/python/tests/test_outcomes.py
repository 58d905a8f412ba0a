"""Every handler outcome, through a real Python worker process and the SQL protocol."""

import time
from typing import Any

import psycopg

from conftest import Cluster, steps_of, transitions
from orcastra import Client

STEPS = """
  - {name: echo, handler: t.echo}
  - {name: child, handler: t.sync_echo, depends_on: [echo]}
  - {name: info, handler: t.info, timeout: 7s}
  - {name: none, handler: t.none}
  - {name: fail, handler: t.always_fail}
  - {name: permanent, handler: t.permanent, retry: {max_attempts: 3}}
  - {name: sync_permanent, handler: t.sync_permanent, retry: {max_attempts: 3}}
  - {name: unserializable, handler: t.unserializable, retry: {max_attempts: 3}}
  - {name: nul, handler: t.nul, retry: {max_attempts: 3}}
  - {name: nan, handler: t.nan, retry: {max_attempts: 3}}
  - {name: big, handler: t.big, retry: {max_attempts: 3}}
  - {name: nul_error, handler: t.nul_error}
  - {name: surrogate, handler: t.surrogate, retry: {max_attempts: 3}}
  - {name: missing, handler: t.missing}
"""


def test_every_handler_outcome(cluster: Cluster, client: Client, db: psycopg.Connection[Any]) -> None:
    reference = cluster.register("outcomes", STEPS, defaults="defaults:\n  retry: {max_attempts: 1}\n")
    worker = cluster.python_worker(concurrency=8)
    submitted = client.submit(reference, {"order": {"amount": 42}})
    task = client.wait(submitted.task_id, timeout=30)
    assert task.state == "error"
    steps = steps_of(db, submitted.task_id)
    for step in steps.values():
        assert step["lease_token"] is None
        assert step["attempts"] == 1, step

    # Successes: results stored, parents visible to children, sync handlers in a thread.
    assert steps["echo"]["state"] == "complete"
    assert steps["echo"]["result"] == {"context": {"order": {"amount": 42}}, "parents": {}, "attempt": 1}
    child = steps["child"]["result"]
    assert steps["child"]["state"] == "complete"
    assert child["parents"] == {"echo": steps["echo"]["result"]}
    assert child["thread"].startswith("orcastra-step-")
    info = steps["info"]["result"]
    assert info["step_id"] == steps["info"]["id"] and info["task_id"] == str(submitted.task_id)
    assert (info["name"], info["handler"], info["attempt"], info["max_attempts"]) == ("info", "t.info", 1, 1)
    assert info["timeout"] == 7.0 and info["time_left_ok"] is True
    (traceparent,) = db.execute("SELECT traceparent FROM orcastra.tasks WHERE id = %s", (submitted.task_id,)).fetchone()  # type: ignore[misc]
    assert info["traceparent"] == traceparent and traceparent.startswith("00-")
    assert steps["none"]["state"] == "complete" and steps["none"]["result"] is None

    # A retryable failure on its last attempt, and permanent failures that keep their attempts.
    assert steps["fail"]["state"] == "error"
    assert steps["fail"]["last_error"] == "ValueError: boom"
    assert transitions(db, steps["fail"]["id"])[-1][2] == "attempts exhausted (1 of 1)"
    for name, message in [("permanent", "order invalid"), ("sync_permanent", "sync order invalid")]:
        assert steps[name]["state"] == "error" and steps[name]["last_error"] == message
        assert transitions(db, steps[name]["id"])[-1][2] == "permanent failure"

    # Results that cannot be stored fail their own step, permanently, with a readable error.
    expectations = {
        "unserializable": "result not storable: it is not JSON-serializable: Object of type object",
        "nan": "result not storable: it is not JSON-serializable: Out of range float values",
        "nul": "result not storable: the string at $.s contains a NUL character",
        "big": "the result is 1048588 bytes, over the limit of 1048576",
        "surrogate": "result not storable: ",  # refused by the driver when reported: the report-alone path
    }
    for name, start in expectations.items():
        assert steps[name]["state"] == "error", (name, steps[name])
        assert steps[name]["last_error"].startswith(start), (name, steps[name]["last_error"])
        assert transitions(db, steps[name]["id"])[-1][2] == "permanent failure", name
    assert "surrogates not allowed" in steps["surrogate"]["last_error"], steps["surrogate"]["last_error"]
    assert steps["nul_error"]["last_error"] == "bad\\0byte (NUL characters shown as \\0)"
    # A handler this worker does not have: a retryable failure naming the handlers it has.
    assert steps["missing"]["state"] == "error"
    assert steps["missing"]["last_error"].startswith(f"RuntimeError: no handler named t.missing is registered in worker {worker.worker_id}")  # type: ignore[attr-defined]
    assert "t.echo" in steps["missing"]["last_error"]
    assert task.error is not None


def test_the_worker_wakes_on_notify_not_on_its_poll(cluster: Cluster, client: Client) -> None:
    reference = cluster.register("notify", "  - {name: a, handler: t.echo}\n  - {name: b, handler: t.echo, depends_on: [a]}\n")
    cluster.python_worker(poll=3600)  # registered (so LISTENing and past its first claim) before the submission
    started = time.monotonic()
    task = client.submit(reference, {"n": 1}).task_id
    assert client.wait(task, timeout=20, recheck=3600).state == "complete"
    assert time.monotonic() - started < 5


def test_an_outcome_the_database_refuses_fails_its_own_step_not_the_batch(
        cluster: Cluster, client: Client, db: psycopg.Connection[Any]) -> None:
    reference = cluster.register("batch", """
  - {name: one, handler: t.gather_ok}
  - {name: poisoned, handler: t.gather_surrogate}
  - {name: two, handler: t.gather_ok}
  - {name: after, handler: t.echo, depends_on: [one, two]}
""")
    cluster.python_worker(concurrency=4)
    submitted = client.submit(reference, {"together": 3})
    task = client.wait(submitted.task_id, timeout=30)
    steps = steps_of(db, submitted.task_id)
    assert "refused a batch of 3 outcomes" in cluster.logs()  # reported together, then one by one
    assert steps["one"]["result"] == {"ok": "one"} and steps["two"]["result"] == {"ok": "two"}
    assert steps["after"]["state"] == "complete"
    assert steps["poisoned"]["state"] == "error" and steps["poisoned"]["lease_token"] is None
    assert steps["poisoned"]["last_error"].startswith("result not storable: ")
    assert "surrogates not allowed" in steps["poisoned"]["last_error"]
    assert task.state == "error"
