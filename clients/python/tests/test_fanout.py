"""Fan-out instances (`for_each`) run by a Python worker: each gets its item and index."""

from typing import Any

import psycopg

from conftest import Cluster, steps_of
from orcastra import Client

STEPS = """
  - {name: each, for_each: "$.context.orders", max_parallel: 2, handler: t.item}
  - {name: join, depends_on: [each], handler: t.echo}
"""


def test_instances_get_their_item_and_index(cluster: Cluster, client: Client, db: psycopg.Connection[Any]) -> None:
    reference = cluster.register("fanout", STEPS)
    cluster.python_worker(concurrency=4)
    orders = [{"id": 7}, "two", 3, None, [5]]
    submitted = client.submit(reference, {"orders": orders})
    task = client.wait(submitted.task_id, timeout=30)
    assert task.state == "complete", cluster.logs()
    steps = steps_of(db, submitted.task_id)
    expected = [{"name": f"each[{i}]", "item": item, "index": i} for i, item in enumerate(orders)]
    for i, result in enumerate(expected):
        assert steps[f"each[{i}]"]["state"] == "complete"
        assert steps[f"each[{i}]"]["result"] == result
    # The fan-in sees the instances' results in index order.
    assert steps["join"]["result"]["parents"] == {"each": expected}
