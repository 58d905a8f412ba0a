"""The Python worker against the Swift worker, in one run on one database (docs/benchmarks.md).

    python clients/python/bench.py --database-url URL [--bin .build/release] [--tasks 500] [--burn-down 2000]

For each worker kind (`orcastra-worker` and this package's Worker) it registers a 4-step linear
template of `orcastra.noop` steps in a namespace of its own and measures:

- 4-step latency: N sequential tasks per kind, alternating between the kinds (both workers run, each
  serving its own namespace), from just before the submission to the moment the client has
  read the task as complete after the task-events NOTIFY that announced it (p50, p99); also the
  server-side finished_at − created_at;
- burn-down: M tasks submitted while no worker serves the namespace, then one worker starts;
  steps ÷ (last step finished − first step started), from the database's timestamps.

`--serve NAMESPACE` runs the Python worker itself (used by the bench as a subprocess).
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from orcastra import Client, Step, Worker

TEMPLATE = """namespace: {namespace}
name: linear
version: 1.0.0
steps:
  - {{name: a, handler: orcastra.noop}}
  - {{name: b, handler: orcastra.noop, depends_on: [a]}}
  - {{name: c, handler: orcastra.noop, depends_on: [b]}}
  - {{name: d, handler: orcastra.noop, depends_on: [c]}}
"""


def serve(url: str, namespace: str, concurrency: int) -> None:
    worker = Worker(url, namespace=namespace, concurrency=concurrency)

    @worker.handler("orcastra.noop")
    async def noop(step: Step) -> Any:
        return {}

    worker.run()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


class Bench:
    def __init__(self, url: str, bin_dir: Path, cli: Path, concurrency: int) -> None:
        self.url = url
        self.bin = bin_dir
        self.cli = cli
        self.concurrency = concurrency
        self.db = psycopg.connect(url, autocommit=True)
        self.client = Client(url)

    def register(self, namespace: str) -> str:
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "linear.yaml").write_text(TEMPLATE.format(namespace=namespace))
            subprocess.run([str(self.cli), "template", "register", folder, "--database-url", self.url],
                           check=True, capture_output=True)
        return f"{namespace}/linear"

    def start_worker(self, kind: str, namespace: str) -> subprocess.Popen[bytes]:
        worker_id = f"bench-{kind}-{uuid.uuid4().hex[:6]}"
        if kind == "swift":
            argv = [str(self.bin / "orcastra-worker"), "--namespace", namespace, "--concurrency", str(self.concurrency),
                    "--worker-id", worker_id, "--log-level", "warning", "--database-url", self.url]
        else:
            argv = [sys.executable, __file__, "--serve", namespace, "--concurrency", str(self.concurrency),
                    "--database-url", self.url]
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not self.db.execute("SELECT 1 FROM orcastra.workers WHERE namespace = %s", (namespace,)).fetchone():
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"the {kind} worker did not start")
            time.sleep(0.05)
        return process

    @staticmethod
    def stop(process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)

    def latency(self, references: dict[str, str], tasks: int) -> dict[str, tuple[list[float], list[float]]]:
        """Sequential tasks, alternating between the kinds, so each sees the same background load."""
        samples: dict[str, tuple[list[float], list[float]]] = {kind: ([], []) for kind in references}
        with psycopg.connect(self.url, autocommit=True) as listen:
            listen.execute(sql.SQL("LISTEN {}").format(sql.Identifier("orcastra_task_events")))
            for i in range(tasks + 20):  # the first 20 warm up
                for kind, reference in references.items():
                    started = time.perf_counter()
                    task_id = str(self.client.submit(reference).task_id)
                    done = False
                    while not done:
                        for notify in listen.notifies(timeout=10, stop_after=1):
                            if notify.payload == task_id:
                                row = self.db.execute("SELECT state = 'complete' FROM orcastra.tasks WHERE id = %s",
                                                      (task_id,)).fetchone()
                                done = bool(row and row[0])
                    elapsed = (time.perf_counter() - started) * 1000
                    if i >= 20:
                        samples[kind][0].append(elapsed)
                        (server,) = self.db.execute(  # type: ignore[misc]
                            "SELECT extract(epoch FROM finished_at - created_at) * 1000 FROM orcastra.tasks WHERE id = %s",
                            (task_id,)).fetchone()
                        samples[kind][1].append(float(server))
        return samples

    def burn_down(self, kind: str, reference: str, namespace: str, tasks: int) -> float:
        ids = [self.client.submit(reference).task_id for _ in range(tasks)]
        worker = self.start_worker(kind, namespace)
        try:
            while True:
                (left,) = self.db.execute(  # type: ignore[misc]
                    "SELECT count(*) FROM orcastra.tasks WHERE id = ANY(%s) AND state <> 'complete'", (ids,)).fetchone()
                if left == 0:
                    break
                time.sleep(0.2)
        finally:
            self.stop(worker)
        (steps, seconds) = self.db.execute(  # type: ignore[misc]
            "SELECT count(*), extract(epoch FROM max(finished_at) - min(started_at)) FROM orcastra.steps WHERE task_id = ANY(%s)",
            (ids,)).fetchone()
        return float(steps) / float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("ORCASTRA_DATABASE_URL") or os.environ.get("DATABASE_URL"))
    parser.add_argument("--bin", type=Path, default=Path(__file__).resolve().parents[2] / ".build" / "release")
    parser.add_argument("--orcastra", type=Path, help="the orcastra CLI (default: BIN/orcastra)")
    parser.add_argument("--tasks", type=int, default=500, help="sequential 4-step tasks for latency")
    parser.add_argument("--burn-down", type=int, default=2000, help="4-step tasks for the burn-down")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--kinds", default="swift,python", help="which workers, in this order (swift, python)")
    parser.add_argument("--serve", metavar="NAMESPACE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.database_url:
        parser.error("give --database-url (or ORCASTRA_DATABASE_URL)")
    if args.serve:
        serve(args.database_url, args.serve, args.concurrency)
        return
    bench = Bench(args.database_url, args.bin, args.orcastra or args.bin / "orcastra", args.concurrency)
    run = uuid.uuid4().hex[:6]
    kinds = args.kinds.split(",")
    namespaces = {kind: f"bench_{kind}_{run}" for kind in kinds}
    references = {kind: bench.register(namespace) for kind, namespace in namespaces.items()}
    workers = [bench.start_worker(kind, namespaces[kind]) for kind in kinds]
    try:
        samples = bench.latency(references, args.tasks)
    finally:
        for worker in workers:
            bench.stop(worker)
    rows = []
    for kind in kinds:
        rate = bench.burn_down(kind, references[kind], namespaces[kind], args.burn_down)
        client_ms, server_ms = samples[kind]
        rows.append((kind, statistics.median(client_ms), percentile(client_ms, 99), statistics.median(server_ms), rate))
        print(f"{kind}: 4-step p50 {rows[-1][1]:.2f} ms, p99 {rows[-1][2]:.2f} ms, server p50 {rows[-1][3]:.2f} ms, "
              f"burn-down {rate:,.0f} steps/s", file=sys.stderr)
    (version,) = bench.db.execute("SHOW server_version").fetchone()  # type: ignore[misc]
    print(f"\n{platform.node()}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
          f"PostgreSQL {version}, Python {platform.python_version()}, {args.tasks} latency tasks, "
          f"{args.burn_down} burn-down tasks, concurrency {args.concurrency}, one worker each\n")
    print("| worker | 4-step p50 | 4-step p99 | server-side p50 | burn-down (1 worker) |")
    print("| --- | --- | --- | --- | --- |")
    for kind, p50, p99, server, rate in rows:
        name = "Swift `orcastra-worker`" if kind == "swift" else "Python `orcastra.Worker`"
        print(f"| {name} | {p50:.2f} ms | {p99:.2f} ms | {server:.2f} ms | {rate:,.0f} steps/s |")


if __name__ == "__main__":
    main()
