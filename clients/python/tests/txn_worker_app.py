"""The Python worker of test_transactions.py: `python txn_worker_app.py NAMESPACE TABLE`.

TABLE (schema.table, made by the test) gets one row per write: step_id, task_id, step_name,
attempt, idempotency key. Options from the environment: TEST_CONCURRENCY, TEST_LEASE, TEST_POLL,
TEST_WORKER_ID; the database from ORCASTRA_DATABASE_URL.
"""

import asyncio
import logging
import os
import sys
from typing import Any

import psycopg
from psycopg import sql

from orcastra import Step, Worker

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)

URL = os.environ["ORCASTRA_DATABASE_URL"]
schema, table = sys.argv[2].split(".")
INSERT = sql.SQL("INSERT INTO {} (step_id, task_id, step_name, attempt, key) VALUES (%s, %s, %s, %s, %s)").format(
    sql.Identifier(schema, table))

worker = Worker(
    URL,
    namespace=sys.argv[1],
    concurrency=int(os.environ.get("TEST_CONCURRENCY", "4")),
    lease=float(os.environ.get("TEST_LEASE", "30")),
    poll_interval=float(os.environ.get("TEST_POLL", "1")),
    worker_id=os.environ.get("TEST_WORKER_ID") or None,
)


def row(step: Step) -> tuple[Any, ...]:
    return (step.step_id, step.task_id, step.name, step.attempt, step.idempotency_key)


async def then(step: Step) -> dict[str, Any]:
    """What every writing handler does after its insert: wait, maybe fail, return its attempt and key."""
    await asyncio.sleep(step.context.get("sleep_ms", 0) / 1000)
    if step.attempt <= step.context.get("fail_attempts", 0):
        raise ValueError(f"attempt {step.attempt} fails after its write, on purpose")
    return {"attempt": step.attempt, "key": step.idempotency_key}


@worker.handler("tx.post", transactional=True)
async def post(step: Step) -> dict[str, Any]:
    await step.connection.execute(INSERT, row(step))
    return await then(step)


_plain: psycopg.AsyncConnection[Any] | None = None
_plain_lock = asyncio.Lock()


@worker.handler("tx.plain_post")
async def plain_post(step: Step) -> dict[str, Any]:
    """The same write committed on its own (autocommit), then the step is reported: at-least-once."""
    global _plain
    async with _plain_lock:
        if _plain is None:
            _plain = await psycopg.AsyncConnection.connect(URL, autocommit=True)
        await _plain.execute(INSERT, row(step))
    return await then(step)


@worker.handler("tx.commits_itself", transactional=True)
async def commits_itself(step: Step) -> dict[str, Any]:
    await step.connection.execute(INSERT, row(step))
    await step.connection.execute("COMMIT")
    return {"attempt": step.attempt}


@worker.handler("tx.swallows_error", transactional=True)
async def swallows_error(step: Step) -> dict[str, Any]:
    await step.connection.execute(INSERT, row(step))
    try:
        await step.connection.execute("SELECT 1 / 0")
    except psycopg.errors.DivisionByZero:
        pass  # and goes on: the transaction is aborted
    return {"attempt": step.attempt}


@worker.handler("tx.sleep_sql", transactional=True)
async def sleep_sql(step: Step) -> dict[str, Any]:
    await step.connection.execute(INSERT, row(step))
    await step.connection.execute(sql.SQL("SELECT pg_sleep(30) /* {} */").format(sql.Literal(step.idempotency_key)))
    return {"attempt": step.attempt}


@worker.handler("tx.key")
def key(step: Step) -> str:
    return step.idempotency_key


if __name__ == "__main__":
    worker.run()
