"""What a Python worker's report-and-refill notifies (docs/worker-protocol.md, "Notifications after
the commit"): a step that its report released and its refill claimed in the same transaction wakes
no one, and what the transaction does notify is sent after its commit."""

from typing import Any

import psycopg
from psycopg import sql

from conftest import Cluster
from orcastra import Client

CHAIN = """
  - {name: a, handler: t.echo}
  - {name: b, handler: t.echo, depends_on: [a]}
  - {name: c, handler: t.echo, depends_on: [b]}
  - {name: d, handler: t.echo, depends_on: [c]}
"""


def test_a_child_claimed_by_the_report_that_released_it_wakes_nobody(cluster: Cluster, client: Client,
                                                                       database_url: str) -> None:
    reference = cluster.register("chain", CHAIN)
    cluster.python_worker(concurrency=4)
    with psycopg.connect(database_url, autocommit=True) as listener:
        row = listener.execute("SELECT orcastra.namespace_channel(%s)", (cluster.namespace,)).fetchone()
        assert row is not None
        channel: str = row[0]
        listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        submitted = client.submit(reference, {})
        task = client.wait(submitted.task_id, timeout=30)
        assert task.state == "complete"
        wakeups: list[Any] = [n for n in listener.notifies(timeout=0.5) if n.channel == channel]
    # The submission wakes the namespace for the root step. Each report then released the next step
    # and claimed it in the same transaction: no wake-up (with report_steps, one per report: 4 in all).
    assert len(wakeups) == 1, wakeups
