"""The Python worker as a least-privilege login role (docs/security.md): it works the namespace it
was granted and nothing else."""

import secrets
from datetime import datetime, timedelta, timezone
import subprocess
import sys
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from conftest import BIN, HERE, Cluster, wait_until
from orcastra import Client
from orcastra import _protocol as protocol


def orcastra(*arguments: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "orcastra"), *arguments, "--database-url", url],
                          capture_output=True, text=True, timeout=60)


def test_python_worker_as_a_granted_login_role(cluster: Cluster, client: Client, db: psycopg.Connection[Any],
                                               database_url: str) -> None:
    reference = cluster.register("roles", "  - {name: echo, handler: t.echo}\n")
    setup = orcastra("roles", "setup", url=database_url)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    role = f"pyworker_{secrets.token_hex(4)}"
    db.execute(f"CREATE ROLE {role} LOGIN")
    granted = orcastra("roles", "grant-worker", role, "--namespace", cluster.namespace, "--json", url=database_url)
    assert granted.returncode == 0, granted.stdout + granted.stderr
    as_role = make_conninfo(database_url, user=role)
    submitter, orchestrator = f"pysubmit_{secrets.token_hex(4)}", f"pyorch_{secrets.token_hex(4)}"
    db.execute(f"CREATE ROLE {submitter} LOGIN IN ROLE orcastra_submitter")
    db.execute(f"CREATE ROLE {orchestrator} LOGIN IN ROLE orcastra_orchestrator")

    # The orchestrator, a Python worker and the Python client each as their own login: the task
    # (started later, so the orchestrator's chores start it) runs to completion.
    cluster._spawn("orchestrator-role", [str(BIN / "orcastra-orchestrator"), "--poll-interval", "200ms"],
                   {"ORCASTRA_DATABASE_URL": make_conninfo(database_url, user=orchestrator)})
    worker = cluster._spawn("python-worker-role", [sys.executable, str(HERE / "worker_app.py"), cluster.namespace],
                            {"ORCASTRA_DATABASE_URL": as_role, "TEST_WORKER_ID": f"py-role-{secrets.token_hex(3)}"})
    with Client(make_conninfo(database_url, user=submitter)) as submitting:
        submitted = submitting.submit(reference, {"n": 1}, run_at=datetime.now(timezone.utc) + timedelta(seconds=1))
        task = submitting.wait(submitted.task_id, timeout=30)
        assert task.state == "complete", cluster.logs()
    # A submitter cannot claim.
    with psycopg.connect(make_conninfo(database_url, user=submitter), autocommit=True) as connection:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute("SELECT * FROM orcastra.claim_steps(%s, 'intruder', 1, 1000)", (cluster.namespace,))
    wait_until(lambda: db.execute("SELECT login_role FROM orcastra.workers WHERE id LIKE 'py-role-%%'").fetchone() == (role,),
               what="the worker's registry row, with its login")
    assert worker.poll() is None

    # The same role cannot claim another namespace, read tables or cancel tasks.
    other = f"{cluster.namespace}x"
    with psycopg.connect(as_role, autocommit=True) as connection:
        with pytest.raises(psycopg.Error) as refused:
            connection.execute("SELECT * FROM orcastra.claim_steps(%s, 'intruder', 10, 30000)", (other,))
        assert refused.value.sqlstate == protocol.SQLSTATE_NAMESPACE_NOT_GRANTED
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute("SELECT * FROM orcastra.tasks")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute("SELECT orcastra.cancel_task(%s, 'x')", (submitted.task_id,))

    # A Python worker started for a namespace the role was not granted claims nothing and says why.
    intruder = cluster._spawn("python-worker-intruder", [sys.executable, str(HERE / "worker_app.py"), other],
                              {"ORCASTRA_DATABASE_URL": as_role, "TEST_POLL": "0.2"})
    cluster.namespace = other
    other_reference = cluster.register("roles-elsewhere", "  - {name: echo, handler: t.echo}\n")
    stranded = client.submit(other_reference, {"n": 2})
    log = cluster.processes[-1][2]
    wait_until(lambda: "OR007" in log.read_text(errors="replace") or "may not work namespace" in log.read_text(errors="replace"),
               what="the intruding worker to be refused")
    assert client.task(stranded.task_id).state != "complete"
    assert db.execute("SELECT count(*) FROM orcastra.steps WHERE task_id = %s AND state = 'enqueued'",
                      (stranded.task_id,)).fetchone() == (1,)
    assert intruder.poll() is None or intruder.returncode != 0
    client.cancel(stranded.task_id)
