"""Fixtures: a real orchestrator serving the dashboard, a real worker, tokens, and headless Chromium.

run-tests.sh sets DATABASE_URL (a migrated throwaway database) and ORCASTRA_BIN. Everything runs
in the namespace `web`; templates use the stock worker's `command` handler.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BIN = Path(os.environ.get("ORCASTRA_BIN", REPO / ".build" / "debug"))
# Screenshots go to a scratch folder unless ORCASTRA_SCREENSHOTS=update asks to refresh the
# checked-in ones under docs/images/ (so a test run leaves the working tree as it found it).
IMAGES = (REPO / "docs" / "images") if os.environ.get("ORCASTRA_SCREENSHOTS") == "update" \
    else Path(os.environ.get("ORCASTRA_SCREENSHOTS_DIR", REPO / ".build-python" / "screenshots"))


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "a condition", step: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except StaleElementReferenceException:
            # A live update replaced the element between finding it and reading it: look again.
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """The orchestrator with --http-address, one worker, and the CLI against the same database."""

    def __init__(self, url: str, directory: Path) -> None:
        self.url = url
        self.directory = directory
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen[bytes]] = []

    def spawn(self, label: str, argv: list[str]) -> None:
        log = (self.directory / f"{label}.log").open("wb")
        env = {**os.environ, "ORCASTRA_DATABASE_URL": self.url}
        self.processes.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def cli(self, *args: str) -> str:
        env = {**os.environ, "ORCASTRA_DATABASE_URL": self.url}
        done = subprocess.run([str(BIN / "orcastra"), *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"orcastra {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout.strip()

    def start(self) -> None:
        self.spawn("orchestrator", [str(BIN / "orcastra-orchestrator"), "--http-address", f"127.0.0.1:{self.port}",
                                    "--poll-interval", "200ms"])
        self.spawn("worker", [str(BIN / "orcastra-worker"), "--namespace", "web", "--poll-interval", "200ms",
                              "--concurrency", "8"])

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2) as answer:
                    return bool(answer.status == 200)
            except OSError:
                return False

        wait_until(healthy, timeout=30, what="the orchestrator's HTTP server")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in self.directory.glob("*.log"))


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="orcastra-browser-") as directory:
        yield Path(directory)


@pytest.fixture(scope="session")
def server(workdir: Path) -> Iterator[Server]:
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.exit("DATABASE_URL is not set: run tests/browser/run-tests.sh", returncode=2)
    s = Server(url, workdir)
    try:
        s.start()
        for template in templates(workdir):
            path = workdir / f"{template.split()[3]}.yaml"  # the template's name
            path.write_text(template)
            s.cli("template", "register", str(path))
        yield s
    finally:
        # Also when starting or registering failed: no process outlives the run.
        s.stop()


def templates(workdir: Path) -> list[str]:
    """The tests' workflows: a diamond, one that fails, one that waits for a file, one that fails once."""
    ok = "['sh', '-c', 'cat >/dev/null; echo {\\\"ok\\\": true}']"
    return [
        f"""namespace: web
name: diamond
version: 1.0.0
steps:
  - {{name: start, command: {ok}}}
  - {{name: left, depends_on: [start], command: {ok}}}
  - {{name: right, depends_on: [start], command: {ok}}}
  - {{name: join, depends_on: [left, right], command: {ok}}}
""",
        f"""namespace: web
name: failing
version: 1.0.0
steps:
  - {{name: prepare, command: {ok}}}
  - name: explode
    depends_on: [prepare]
    retry: {{max_attempts: 1}}
    command: ['sh', '-c', 'echo "disk full: cannot write /data/out" >&2; exit 3']
  - {{name: never, depends_on: [explode], command: {ok}}}
""",
        f"""namespace: web
name: gated
version: 1.0.0
steps:
  - name: wait
    timeout: 2m
    command: ['sh', '-c', 'cat >/dev/null; while [ ! -f {workdir}/release ]; do sleep 0.02; done; echo {{}}']
  - name: after
    depends_on: [wait]
    timeout: 2m
    command: ['sh', '-c', 'cat >/dev/null; while [ ! -f {workdir}/release-after ]; do sleep 0.02; done; echo {{}}']
""",
        "namespace: idle\nname: fan\nversion: 1.0.0\nsteps:\n  - {name: split, handler: idle.split}\n"
        + "".join(f"  - {{name: 'resize_{i}', handler: idle.resize, depends_on: [split]}}\n" for i in range(998))
        + "  - {name: join, handler: idle.join, depends_on: [" + ", ".join(f"resize_{i}" for i in range(998)) + "]}\n",
        f"""namespace: web
name: held
version: 1.0.0
steps:
  - name: hold
    timeout: 2m
    command: ['sh', '-c', 'cat >/dev/null; while [ ! -f {workdir}/release-list ]; do sleep 0.02; done; echo {{}}']
""",
        f"""namespace: web
name: flaky
version: 1.0.0
steps:
  - name: flaky
    retry: {{max_attempts: 1}}
    command: ['sh', '-c', 'cat >/dev/null; if [ -f {workdir}/flaky-mark ]; then echo {{}}; else touch {workdir}/flaky-mark; echo "first try fails" >&2; exit 1; fi']
  - {{name: finish, depends_on: [flaky], command: {ok}}}
""",
    ]


@pytest.fixture(scope="session")
def tokens(server: Server) -> dict[str, str]:
    return {
        "writer": server.cli("token", "create", "--name", "browser-writer", "--scopes", "tasks:read,tasks:write"),
        "reader": server.cli("token", "create", "--name", "browser-reader", "--scopes", "tasks:read"),
    }


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,900", "--force-device-scale-factor=1"]:
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def submit(server: Server, template: str, context: str = "{}", later: str | None = None) -> str:
    """Submits a task through the CLI; `later` (e.g. "1h") schedules its start."""
    out = server.cli("submit", template, "--context", context, "--json", *(["--in", later] if later else []))
    import json
    return str(json.loads(out)["task_id"])


def screenshot(driver: webdriver.Chrome, name: str) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(IMAGES / f"dashboard-{name}.png"))
