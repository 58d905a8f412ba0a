"""Fixtures: a migrated PostgreSQL (DATABASE_URL, set by run-tests.sh), real worker and orchestrator processes.

Every test works in a namespace of its own, so tests never take each other's steps. After each
test, `orcastra check` (the invariant checker) must pass on the whole database.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from orcastra import Client

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
BIN = Path(os.environ.get("ORCASTRA_BIN", REPO / ".build" / "debug"))


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "a condition") -> Any:
    """Polls `predicate` (a database read) every 50 ms until it is truthy; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.exit("DATABASE_URL is not set: run the tests with clients/python/run-tests.sh", returncode=2)
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def client(database_url: str) -> Iterator[Client]:
    with Client(database_url) as c:
        yield c


@pytest.fixture
def namespace() -> str:
    return f"py{secrets.token_hex(5)}"


class Cluster:
    """The processes of one test: Python workers, Swift workers, orchestrators. Killed at the end."""

    def __init__(self, url: str, directory: Path, namespace: str) -> None:
        self.url = url
        self.directory = directory
        self.namespace = namespace
        self.processes: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def _spawn(self, label: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self.directory / f"{label}-{len(self.processes)}.log"
        full_env = {**os.environ, "ORCASTRA_DATABASE_URL": self.url, **env}
        process = subprocess.Popen(argv, env=full_env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes.append((label, process, log))
        return process

    def register(self, name: str, yaml_steps: str, defaults: str = "") -> str:
        """Registers template NAMESPACE/name@1.0.0 with the given steps; returns its reference."""
        folder = self.directory / f"template-{name}"
        folder.mkdir()
        (folder / f"{name}.yaml").write_text(
            f"namespace: {self.namespace}\nname: {name}\nversion: 1.0.0\n{defaults}\nsteps:\n{yaml_steps}")
        subprocess.run([str(BIN / "orcastra"), "template", "register", str(folder), "--database-url", self.url],
                       check=True, capture_output=True, timeout=30)
        return f"{self.namespace}/{name}"

    def python_worker(self, wait: bool = True, **options: Any) -> subprocess.Popen[bytes]:
        worker_id = options.pop("worker_id", f"py-{secrets.token_hex(4)}")
        env = {f"TEST_{k.upper()}": str(v) for k, v in options.items()}
        env["TEST_WORKER_ID"] = worker_id
        process = self._spawn("python-worker", [sys.executable, str(HERE / "worker_app.py"), self.namespace], env)
        process.worker_id = worker_id  # type: ignore[attr-defined]
        if wait:
            self.wait_registered(worker_id, process)
        return process

    def swift_worker(self, *arguments: str, worker_id: str | None = None) -> subprocess.Popen[bytes]:
        worker_id = worker_id or f"swift-{secrets.token_hex(4)}"
        process = self._spawn("swift-worker", [str(BIN / "orcastra-worker"), "--namespace", self.namespace,
                                               "--worker-id", worker_id, *arguments], {})
        process.worker_id = worker_id  # type: ignore[attr-defined]
        self.wait_registered(worker_id, process)
        return process

    def orchestrator(self) -> subprocess.Popen[bytes]:
        return self._spawn("orchestrator", [str(BIN / "orcastra-orchestrator"), "--poll-interval", "200ms"], {})

    def wait_registered(self, worker_id: str, process: subprocess.Popen[bytes]) -> None:
        with psycopg.connect(self.url, autocommit=True) as connection:
            def registered() -> bool:
                if process.poll() is not None:
                    raise AssertionError(f"worker {worker_id} exited with {process.returncode}:\n{self.logs()}")
                return connection.execute("SELECT 1 FROM orcastra.workers WHERE id = %s", (worker_id,)).fetchone() is not None
            wait_until(registered, what=f"worker {worker_id} to register")

    def logs(self) -> str:
        return "\n".join(f"--- {label} ({log.name}) ---\n{log.read_text(errors='replace')[-6000:]}"
                         for label, _, log in self.processes)

    def stop_all(self) -> None:
        for _, process, _ in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
        for _, process, _ in self.processes:
            process.wait(timeout=10)


@pytest.fixture
def cluster(database_url: str, tmp_path: Path, namespace: str, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    c = Cluster(database_url, tmp_path, namespace)
    yield c
    c.stop_all()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(c.logs())
    check = subprocess.run([str(BIN / "orcastra"), "check", "--json", "--database-url", database_url],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, f"orcastra check found violations:\n{check.stdout}\n{check.stderr}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def steps_of(db: psycopg.Connection[Any], task_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    rows = db.execute("SELECT s.name, s.state, s.attempts, s.last_error, r.result, s.lease_token, s.id "
                      "FROM orcastra.steps s LEFT JOIN orcastra.step_results r ON r.step_id = s.id "
                      "WHERE s.task_id = %s", (task_id,)).fetchall()
    return {name: {"state": state, "attempts": attempts, "last_error": error, "result": result, "lease_token": token, "id": id_}
            for name, state, attempts, error, result, token, id_ in rows}


def transitions(db: psycopg.Connection[Any], step_id: int) -> list[tuple[str | None, str, str, Any]]:
    return [tuple(r) for r in db.execute(  # type: ignore[misc]
        "SELECT from_state, to_state, reason, metadata FROM orcastra.step_transitions WHERE step_id = %s ORDER BY id",
        (step_id,)).fetchall()]


def dump(value: Any) -> str:
    return json.dumps(value, default=str, indent=1)
