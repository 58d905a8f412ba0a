"""Fan-out instances (`for_each`) run by a Python worker: each gets its item and index, and the
context and its fan-out step's parents only when `instance_input` lists them."""

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
    # Without instance_input an instance gets neither the context (the list itself here) nor parents.
    expected = [{"name": f"each[{i}]", "item": item, "index": i, "context": None, "parents": {}}
                for i, item in enumerate(orders)]
    for i, result in enumerate(expected):
        assert steps[f"each[{i}]"]["state"] == "complete"
        assert steps[f"each[{i}]"]["result"] == result
    # The fan-in sees the instances' results in index order.
    assert steps["join"]["result"]["parents"] == {"each": expected}


PASSING = """
  - {name: split, handler: t.echo}
  - {name: each, depends_on: [split], for_each: "$.context.orders", instance_input: [context, parents], handler: t.item}
"""


def test_instance_input_passes_the_context_and_the_parents(cluster: Cluster, client: Client,
                                                           db: psycopg.Connection[Any]) -> None:
    reference = cluster.register("fanout_passing", PASSING)
    cluster.python_worker(concurrency=4)
    context = {"orders": ["a", "b"], "customer": 9}
    submitted = client.submit(reference, context)
    task = client.wait(submitted.task_id, timeout=30)
    assert task.state == "complete", cluster.logs()
    steps = steps_of(db, submitted.task_id)
    split = steps["split"]["result"]
    for i, item in enumerate(context["orders"]):
        assert steps[f"each[{i}]"]["result"] == {"name": f"each[{i}]", "item": item, "index": i,
                                                 "context": context, "parents": {"split": split}}
