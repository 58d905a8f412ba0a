"""Transactions (docs/transactions.md, Python): submission inside the caller's transaction, and
transactional steps whose writes commit together with the step's completion, or not at all."""

import os
import random
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import HERE, Cluster, steps_of, wait_until
from orcastra import Client, NotInTransaction, Step, Worker


@pytest.fixture
def table(db: psycopg.Connection[Any], namespace: str) -> Iterator[str]:
    """A table of the test's own for the handlers' writes; step_id is deliberately not unique."""
    db.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(namespace)))
    db.execute(sql.SQL("CREATE TABLE {} (id bigserial PRIMARY KEY, step_id bigint NOT NULL, task_id uuid NOT NULL, "
                       "step_name text NOT NULL, attempt int NOT NULL, key text NOT NULL)").format(
        sql.Identifier(namespace, "entries")))
    yield f"{namespace}.entries"
    db.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(namespace)))


def txn_worker(cluster: Cluster, table: str, wait: bool = True, **options: Any) -> subprocess.Popen[bytes]:
    worker_id = f"pytx-{secrets.token_hex(4)}"
    env = {f"TEST_{k.upper()}": str(v) for k, v in options.items()}
    env["TEST_WORKER_ID"] = worker_id
    process = cluster._spawn("python-txn-worker", [sys.executable, str(HERE / "txn_worker_app.py"), cluster.namespace, table],
                             env)
    process.worker_id = worker_id  # type: ignore[attr-defined]
    if wait:
        cluster.wait_registered(worker_id, process)
    return process


def rows(db: psycopg.Connection[Any], table: str, task: uuid.UUID) -> list[tuple[Any, ...]]:
    schema, name = table.split(".")
    return db.execute(sql.SQL("SELECT step_name, attempt, key FROM {} WHERE task_id = %s ORDER BY id").format(
        sql.Identifier(schema, name)), (task,)).fetchall()


def tasks_of(db: psycopg.Connection[Any], reference: str) -> int:
    namespace, name = reference.split("/")
    row = db.execute("SELECT count(*) FROM orcastra.tasks t JOIN orcastra.templates p ON p.id = t.template_id "
                     "WHERE p.namespace = %s AND p.name = %s", (namespace, name)).fetchone()
    assert row is not None
    return int(row[0])


# MARK: - Transactional submission

def test_a_submission_exists_iff_its_transaction_commits(
        cluster: Cluster, client: Client, db: psycopg.Connection[Any], database_url: str, table: str) -> None:
    reference = cluster.register("submit", "  - {name: a, handler: tx.key}\n")
    txn_worker(cluster, table, poll=30)  # polls every 30 s: only a notification wakes it in time
    channel = db.execute("SELECT orcastra.namespace_channel(%s)", (cluster.namespace,)).fetchone()[0]  # type: ignore[index]
    with psycopg.connect(database_url, autocommit=True) as listen:
        listen.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

        # Rolled back: no task, and no worker was woken.
        with psycopg.connect(database_url, autocommit=True) as conn:
            with conn.transaction(force_rollback=True):
                created = client.submit(reference, {"n": 1}, idempotency_key="rolled-back", conn=conn)
                assert created.created
                seen = conn.execute("SELECT count(*) FROM orcastra.tasks WHERE id = %s", (created.task_id,)).fetchone()
                assert seen == (1,)  # visible inside the transaction
        assert tasks_of(db, reference) == 0
        assert list(listen.notifies(timeout=1.0)) == []

        # Refused before anything is sent: autocommit outside a transaction, none begun yet, an aborted one.
        with psycopg.connect(database_url, autocommit=True) as conn:
            with pytest.raises(NotInTransaction, match="autocommit"):
                client.submit(reference, {"n": 2}, conn=conn)
        with psycopg.connect(database_url) as conn:
            with pytest.raises(NotInTransaction, match="no transaction is open"):
                client.submit(reference, {"n": 3}, conn=conn)
            with pytest.raises(psycopg.errors.DivisionByZero):
                conn.execute("SELECT 1 / 0")
            with pytest.raises(NotInTransaction, match="aborted"):
                client.submit(reference, {"n": 4}, conn=conn)
            conn.rollback()
            # The usual checks still come first, and leave the transaction usable.
            with conn.transaction():
                with pytest.raises(ValueError, match="over the limit"):
                    client.submit(reference, {"big": "x" * (1 << 20)}, conn=conn)
                assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert tasks_of(db, reference) == 0
        assert list(listen.notifies(timeout=0.2)) == []

        # Committed together with the caller's own write: the worker is woken at the commit and runs it.
        schema, name = table.split(".")
        with psycopg.connect(database_url, autocommit=True) as conn:
            with conn.transaction():
                conn.execute(sql.SQL("INSERT INTO {} (step_id, task_id, step_name, attempt, key) "
                                     "VALUES (0, gen_random_uuid(), 'order', 0, 'order-1')").format(
                    sql.Identifier(schema, name)))
                task = client.submit(reference, {"n": 5}, conn=conn).task_id
            committed = time.monotonic()
        assert [n.channel for n in listen.notifies(timeout=5.0, stop_after=1)] == [channel]
    done = client.wait(task, timeout=10)
    assert done.state == "complete"
    assert time.monotonic() - committed < 5, "the worker was not woken by the commit's notification"
    assert done.results == {"a": f"{task}/a"}  # the idempotency key: <task id>/<step name>
    assert tasks_of(db, reference) == 1


# MARK: - Transactional steps

def test_failures_roll_the_steps_writes_back(
        cluster: Cluster, client: Client, db: psycopg.Connection[Any], table: str) -> None:
    reference = cluster.register("failures", (
        "  - {name: retried, handler: tx.post, retry: {max_attempts: 3, backoff: none}}\n"
        "  - {name: swallowed, handler: tx.swallows_error, retry: {max_attempts: 2, backoff: none}}\n"
        "  - {name: commits, handler: tx.commits_itself, retry: {max_attempts: 3, backoff: none}}\n"))
    cluster.orchestrator()  # enqueues the retries
    txn_worker(cluster, table)
    task = client.submit(reference, {"fail_attempts": 1}).task_id
    done = client.wait(task, timeout=20)
    retried, swallowed, commits = done.step("retried"), done.step("swallowed"), done.step("commits")
    # A retryable failure after the write: rolled back, recorded, and the next attempt's write is the one.
    assert retried.state == "complete" and retried.attempts == 2
    assert retried.result == {"attempt": 2, "key": f"{task}/retried"}
    assert [r for r in rows(db, table, task) if r[0] == "retried"] == [("retried", 2, f"{task}/retried")]
    # A handler that caught a failed statement and went on: retryable, its writes rolled back.
    assert swallowed.state == "error" and swallowed.attempts == 2
    assert "transaction was aborted" in (swallowed.last_error or "")
    assert [r for r in rows(db, table, task) if r[0] == "swallowed"] == []
    # A handler that commits by itself: its write is its own doing, the step fails for good.
    assert commits.state == "error" and commits.attempts == 1
    assert "ended the step's transaction itself" in (commits.last_error or "")
    assert [r[:2] for r in rows(db, table, task) if r[0] == "commits"] == [("commits", 1)]


def test_a_timeout_cancels_the_statement_on_the_server_and_rolls_back(
        cluster: Cluster, client: Client, db: psycopg.Connection[Any], table: str) -> None:
    reference = cluster.register("timeout", "  - {name: s, handler: tx.sleep_sql, timeout: 1s, retry: {max_attempts: 1}}\n")
    txn_worker(cluster, table)
    task = client.submit(reference).task_id
    wait_until(lambda: db.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s",
                                  (f"%pg_sleep(30)%{task}/s%",)).fetchone() == (1,),
               what="the handler's pg_sleep to run")
    started = time.monotonic()
    done = client.wait(task, timeout=10)
    assert time.monotonic() - started < 5
    step = done.step("s")
    assert step.state == "error" and "timed out after 1s" in (step.last_error or "")
    # Rolled back before the failure was recorded: nothing written, nothing still sleeping.
    assert rows(db, table, task) == []
    assert db.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND state <> 'idle'",
                      (f"%pg_sleep(30)%{task}/s%",)).fetchone() == (0,)


def in_progress(db: psycopg.Connection[Any], task: uuid.UUID) -> bool:
    return db.execute("SELECT count(*) FROM orcastra.steps WHERE task_id = %s AND state = 'in_progress'",
                      (task,)).fetchone() == (1,)


def test_an_attempt_that_lost_its_lease_rolls_back_and_the_next_one_writes(
        cluster: Cluster, client: Client, db: psycopg.Connection[Any], table: str) -> None:
    reference = cluster.register("leaselost", "  - {name: w, handler: tx.post, retry: {max_attempts: 3, backoff: none}}\n")
    txn_worker(cluster, table, lease=30)  # its next heartbeat is 10 s away
    task = client.submit(reference, {"sleep_ms": 1000}).task_id
    wait_until(lambda: in_progress(db, task), what="the step to run")
    # As an orchestrator does once a lease ran out: the step goes back in line with a new attempt
    # while the first one still runs.
    db.execute("UPDATE orcastra.steps SET lease_expires_at = now() - interval '1 second' WHERE task_id = %s", (task,))
    assert db.execute("SELECT orcastra.recover_expired_leases(10)").fetchone() == (1,)
    done = client.wait(task, timeout=15)
    assert done.state == "complete"
    assert done.step("w").result == {"attempt": 2, "key": f"{task}/w"}
    # Attempt 1 (started first) heard lease_lost from complete_step_in_transaction and rolled back.
    wait_until(lambda: "rolled back: the lease was lost" in cluster.logs(), what="attempt 1 to roll back")
    assert rows(db, table, task) == [("w", 2, f"{task}/w")]


def test_a_task_cancelled_while_its_step_runs_rolls_the_step_back(
        cluster: Cluster, client: Client, db: psycopg.Connection[Any], table: str) -> None:
    reference = cluster.register("cancelled", "  - {name: w, handler: tx.post}\n")
    txn_worker(cluster, table, lease=30)  # no heartbeat during the step: its completion hears "ignored"
    task = client.submit(reference, {"sleep_ms": 800}).task_id
    wait_until(lambda: in_progress(db, task), what="the step to run")
    client.cancel(task)
    assert client.wait(task, timeout=10).state == "cancelled"
    step_id = steps_of(db, task)["w"]["id"]
    wait_until(lambda: db.execute("SELECT state FROM orcastra.steps WHERE id = %s", (step_id,)).fetchone() == ("cancelled",),
               what="the step to be recorded cancelled")
    # Its completion heard "ignored", rolled back, and recorded the cancellation on its own.
    # The worker logs that after its rollback commits, so the line may trail the row: wait for it.
    wait_until(lambda: "rolled back: its task was cancelled" in cluster.logs(), what="the step to log its rollback")
    assert rows(db, table, task) == []


def test_a_sync_transactional_handler_is_refused_at_registration() -> None:
    worker = Worker("postgresql://unused", namespace="nowhere")
    with pytest.raises(TypeError, match="must be an async function"):
        @worker.handler("sync", transactional=True)
        def sync(step: Step) -> None:
            pass
    assert worker.handler_names == []


# MARK: - Exactly once under SIGKILL

CHAIN = ("  - {name: debit, handler: HANDLER}\n"
         "  - {name: credit, handler: HANDLER, depends_on: [debit]}\n")
TASKS = 100
MIN_KILLS = 10


@pytest.mark.timeout(120)
@pytest.mark.parametrize("transactional", [True, False], ids=["transactional", "plain"])
def test_repeated_sigkill_writes_once_per_step_only_when_transactional(
        cluster: Cluster, client: Client, db: psycopg.Connection[Any], table: str, transactional: bool) -> None:
    handler = "tx.post" if transactional else "tx.plain_post"
    reference = cluster.register("ledger", CHAIN.replace("HANDLER", handler),
                                 defaults="defaults:\n  retry: {max_attempts: 100, backoff: none}\n")
    cluster.orchestrator()  # recovers the killed workers' leases
    options = {"concurrency": 3, "lease": 1}
    worker = txn_worker(cluster, table, **options)
    started = time.monotonic()
    tasks = [client.submit(reference, {"sleep_ms": 120}).task_id for _ in range(TASKS)]

    def unfinished() -> int:
        row = db.execute("SELECT count(*) FROM orcastra.tasks WHERE id = ANY(%s) AND state <> 'complete'", (tasks,)).fetchone()
        assert row is not None
        return int(row[0])

    kills = 0
    while unfinished() > 0:
        assert time.monotonic() - started < 100, f"{unfinished()} tasks unfinished after {kills} kills"
        time.sleep(random.uniform(0.3, 0.7))  # of work: each worker is killed that long after it registered
        if unfinished() == 0:
            break
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        kills += 1
        worker = txn_worker(cluster, table, **options)
    assert kills >= MIN_KILLS, f"the work finished after {kills} kills: make it longer"

    steps = db.execute("SELECT id, attempts, state FROM orcastra.steps WHERE task_id = ANY(%s)", (tasks,)).fetchall()
    assert len(steps) == 2 * TASKS and all(state == "complete" for _, _, state in steps)
    reran = sum(1 for _, attempts, _ in steps if attempts > 1)
    assert reran > 0, "no step ran twice: the kills proved nothing"
    schema, name = table.split(".")
    written = db.execute(sql.SQL("SELECT step_id, count(*), array_agg(attempt) FROM {} GROUP BY step_id").format(
        sql.Identifier(schema, name))).fetchall()
    total = sum(count for _, count, _ in written)
    duplicates = total - len(written)
    print(f"{'transactional' if transactional else 'plain'}: {kills} kills, {len(steps)} steps, {reran} ran again, "
          f"{total} rows, {duplicates} duplicates, {time.monotonic() - started:.1f} s")
    if transactional:
        # Exactly one row per completed step, none missing, none doubled, each by the attempt that completed it.
        attempts = {step_id: attempts for step_id, attempts, _ in steps}
        assert duplicates == 0
        assert {step_id: (count, list(by)) for step_id, count, by in written} == \
            {step_id: (1, [attempt]) for step_id, attempt in attempts.items()}
    else:
        assert {step_id for step_id, _, _ in written} == {step_id for step_id, _, _ in steps}
        assert duplicates > 0, "the plain handler wrote no duplicate: the kills did not land between write and report"
