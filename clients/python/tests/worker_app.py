"""The Python worker the tests start as a process: `python worker_app.py NAMESPACE`.

Options come from the environment (TEST_CONCURRENCY, TEST_LEASE, TEST_GRACE, TEST_POLL, TEST_WORKER_ID);
the database from ORCASTRA_DATABASE_URL.
"""

import asyncio
import logging
import math
import os
import sys
import threading
import time
from typing import Any

from orcastra import Permanent, Step, Worker

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)

worker = Worker(
    os.environ["ORCASTRA_DATABASE_URL"],
    namespace=sys.argv[1],
    concurrency=int(os.environ.get("TEST_CONCURRENCY", "4")),
    lease=float(os.environ.get("TEST_LEASE", "30")),
    grace_period=float(os.environ.get("TEST_GRACE", "30")),
    poll_interval=float(os.environ.get("TEST_POLL", "1")),
    worker_id=os.environ.get("TEST_WORKER_ID") or None,
)


@worker.handler("t.echo")
async def echo(step: Step) -> Any:
    return {"context": step.context, "parents": step.parents, "attempt": step.attempt}


@worker.handler("t.sync_echo")
def sync_echo(step: Step) -> Any:
    return {"context": step.context, "parents": step.parents, "thread": threading.current_thread().name}


@worker.handler("t.info")
async def info(step: Step) -> Any:
    return {"step_id": step.step_id, "task_id": str(step.task_id), "name": step.name, "handler": step.handler,
            "attempt": step.attempt, "max_attempts": step.max_attempts, "timeout": step.timeout,
            "time_left_ok": 0 < step.time_left() <= step.timeout, "deadline": step.deadline.isoformat(),
            "traceparent": step.traceparent}


@worker.handler("t.item")
async def item(step: Step) -> Any:
    return {"name": step.name, "item": step.item, "index": step.index, "context": step.context, "parents": step.parents}


@worker.handler("t.none")
def none(step: Step) -> None:
    return None


@worker.handler("t.fail_until")
async def fail_until(step: Step) -> Any:
    if step.attempt < step.context["succeed_on"]:
        raise ValueError(f"attempt {step.attempt} fails on purpose")
    return {"succeeded_on": step.attempt}


@worker.handler("t.always_fail")
def always_fail(step: Step) -> Any:
    raise ValueError("boom")


@worker.handler("t.permanent")
async def permanent(step: Step) -> Any:
    raise Permanent("order invalid")


@worker.handler("t.sync_permanent")
def sync_permanent(step: Step) -> Any:
    raise Permanent("sync order invalid")


@worker.handler("t.unserializable")
async def unserializable(step: Step) -> Any:
    return {"when": object()}


@worker.handler("t.nul")
async def nul(step: Step) -> Any:
    return {"s": "a\0b"}


@worker.handler("t.nan")
async def nan(step: Step) -> Any:
    return {"x": math.nan}


@worker.handler("t.big")
async def big(step: Step) -> Any:
    return "x" * ((1 << 20) + 10)


@worker.handler("t.nul_error")
async def nul_error(step: Step) -> Any:
    raise Permanent("bad\0byte")


@worker.handler("t.surrogate")
async def surrogate(step: Step) -> Any:
    return {"s": "lone \ud800 surrogate"}


# Steps of one task that finish in the same event-loop turn, so their outcomes go in one report.
gates: dict[str, tuple[asyncio.Event, list[int]]] = {}


async def gathered(step: Step) -> None:
    event, arrived = gates.setdefault(str(step.task_id), (asyncio.Event(), []))
    arrived.append(step.step_id)
    if len(arrived) == step.context["together"]:
        event.set()
    await event.wait()


@worker.handler("t.gather_ok")
async def gather_ok(step: Step) -> Any:
    await gathered(step)
    return {"ok": step.name}


@worker.handler("t.gather_surrogate")
async def gather_surrogate(step: Step) -> Any:
    await gathered(step)
    return {"s": "lone \udfff surrogate"}


@worker.handler("t.sleep")
async def sleep(step: Step) -> Any:
    await asyncio.sleep(step.context.get("sleep_ms", 1000) / 1000)
    return {"slept_ms": step.context.get("sleep_ms", 1000), "shutting_down": step.shutting_down}


@worker.handler("t.sync_sleep")
def sync_sleep(step: Step) -> Any:
    time.sleep(step.context.get("sleep_ms", 1000) / 1000)
    return {"slept_ms": step.context.get("sleep_ms", 1000)}


# The Swift worker's built-in handlers, so both can serve one namespace.
@worker.handler("orcastra.noop")
async def noop(step: Step) -> Any:
    return {}


@worker.handler("orcastra.sleep")
async def orcastra_sleep(step: Step) -> Any:
    ms = step.context.get("sleep_ms", 1000) if isinstance(step.context, dict) else 1000
    await asyncio.sleep(ms / 1000)
    return {"slept_ms": ms}


worker.run()
