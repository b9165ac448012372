"""Prometheus metrics as real processes expose them: ``/metrics`` of a pre-fork server
totals every web process whichever one answers the scrape (and keeps a killed process's
counts), its per-server metrics directory goes away with it, gauges combine across
processes as declared, and the worker still serves its own metrics port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

from tests.processes import ROOT, free_port, start_server, start_worker, stop, wait_for
from tests.web_processes import children_of, get_on_fresh_connection

HEALTH_COUNT = "flask_http_request_duration_seconds_count"


def sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def health_count(text: str) -> float | None:
    return sample(text, HEALTH_COUNT, method="GET", status="200", endpoint="ops.health")


def two_children(parent: int) -> set[int]:
    def both() -> set[int] | None:
        kids = children_of(parent)
        return kids if len(kids) == 2 else None

    return wait_for(both, timeout=20, what="two web processes")


def scrapes_from_each(port: int, kids: set[int], per_process: int = 3) -> dict[int, list[str]]:
    """Scrape ``/metrics`` on fresh connections until every process in ``kids`` answered
    ``per_process`` of them; the bodies by the process that answered."""
    bodies: dict[int, list[str]] = {k: [] for k in kids}
    for _ in range(400):
        if all(len(b) >= per_process for b in bodies.values()):
            return bodies
        who, status, body = get_on_fresh_connection(port, "/metrics", kids)
        assert status == 200
        if who in bodies:
            bodies[who].append(body.decode())
    counts = {k: len(v) for k, v in bodies.items()}
    raise AssertionError(f"scrapes did not reach every process: {counts}")


def metrics_dir_of(pid: int) -> Path:
    """The multiprocess directory a web process writes its values to (its mmapped files)."""
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        path = line.split()[-1]
        if path.endswith(".db") and "ccweb-metrics-" in path:
            return Path(path).parent
    raise AssertionError(f"no metrics files mapped by {pid}")


def test_metrics_are_the_whole_servers_whichever_process_answers(subprocess_env):
    """Requests spread over both web processes (fresh connections; the kernel picks the
    process, the test reads which one it was), then several scrapes answered by each
    process: every one shows the total. After one process is killed and replaced, the
    total still includes what the dead one counted (counters never go backwards)."""
    proc, port = start_server(subprocess_env, processes=2)
    try:
        kids = two_children(proc.pid)
        served: Counter[int | None] = Counter()
        while min(served[k] for k in kids) < 5 or sum(served.values()) < 60:
            who, status, _ = get_on_fresh_connection(port, "/health", kids)
            assert status == 200
            served[who] += 1
            assert sum(served.values()) < 1000, served
        total = sum(served.values())
        for who, bodies in scrapes_from_each(port, kids).items():
            assert [health_count(b) for b in bodies] == [total] * len(bodies), who

        directory = metrics_dir_of(min(kids))
        assert metrics_dir_of(max(kids)) == directory
        os.kill(min(kids), signal.SIGKILL)
        (survivor,) = kids - {min(kids)}
        replacement = wait_for(
            lambda: next(iter(children_of(proc.pid) - kids), None), timeout=20, what="replacement"
        )
        pair = {survivor, replacement}
        wait_for(lambda: len(children_of(proc.pid)) == 2, what="the replacement running")
        for who, bodies in scrapes_from_each(port, pair, per_process=2).items():
            assert [health_count(b) for b in bodies] == [total] * len(bodies), who
    finally:
        assert stop(proc) == 0
    assert not directory.exists()  # the parent removes its metrics directory on the way out


_GAUGE_MODES = """
import os, time
from prometheus_client import CollectorRegistry, generate_latest, multiprocess

def process_setting(value):
    pid = os.fork()
    if pid == 0:
        from ccweb.metrics import OUTBOX_PENDING  # imported after the fork, as web processes do
        OUTBOX_PENDING.set(value)
        os._exit(0)
    os.waitpid(pid, 0)
    return pid

def exposed():
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if line.startswith("cc_outbox_pending")]

first = process_setting(5)
time.sleep(0.01)
second = process_setting(7)
print(exposed())
multiprocess.mark_process_dead(second)
print(exposed())
"""


def test_gauges_show_the_latest_reading_of_a_live_process(tmp_path):
    """In multiprocess mode a gauge of shared state (outbox backlog, stream lag) is one
    reading, the most recent of a live process — not one sample per pid, nor a sum."""
    run = subprocess.run(
        [sys.executable, "-c", _GAUGE_MODES],
        cwd=ROOT,
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split("\n")[:2] == [
        "['cc_outbox_pending 7.0']",
        "['cc_outbox_pending 5.0']",
    ]


def test_worker_serves_its_own_metrics_port(subprocess_env):
    """``CC_WORKER_METRICS_PORT``: the worker (not a pre-forked web process) exposes its
    own registry: its stream-group gauges and its process metrics."""
    port = free_port()
    worker = start_worker({**subprocess_env, "CC_WORKER_METRICS_PORT": str(port)})
    try:

        def scrape() -> str | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    text = r.read().decode()
            except OSError:
                return None
            # the group's gauges are set one after the other: wait for the last one
            if sample(text, "cc_worker_pending", group="activity") is None:
                return None
            return text

        text = wait_for(scrape, timeout=30, what="the worker's group gauges")
        assert "process_cpu_seconds_total" in text
        assert sample(text, "cc_worker_lag", group="activity") is not None
    finally:
        stop(worker)
