"""``make loadtest``: the whole load test in one command — system, Locust, verdict.

    python -m loadtests.run [--host URL] [--users 200] [--spawn-rate 10] [--duration 120]
                            [--web-processes 2] [--think 1,3] [--socket-share 0.5]
                            [--signup-share 0.1] [--reports loadtests/reports]

1. **The system.** If a server answers ``/health`` at ``--host`` (default
   ``LOADTEST_HOST`` or http://127.0.0.1:8000, where ``make run`` listens) it is used as
   it is, and the database checks read ``DATABASE_URL`` — which must then be that
   server's database (``make loadtest`` sets it the way ``make run`` does). Otherwise the
   run starts its own, as the benchmarks do (:mod:`bench.common`): a fresh database
   (created, migrated, seeded — invite code 5858, events, missions, products — and
   dropped afterwards) with its own Redis prefix, ``python -m ccweb.server`` with
   ``CC_WEB_PROCESSES`` web processes (2) and one ``python -m worker`` at nice 10, the way
   ``make run`` runs them, on a free port. The sinks are whatever ``scripts/services.py``
   configured (``CC_SINKS=0`` disables them).
2. **Locust**, headless, ``--users`` players arriving at ``--spawn-rate`` per second for
   ``--duration`` seconds in all (ramp-up included and counted). ``--signup-share`` of
   them are new and sign up; the others log in to accounts made just before
   (:mod:`loadtests.accounts`: a ramp of sign-ups is not what a live game sees),
   writing ``loadtest_*.csv``, ``loadtest.html`` and ``summary.json`` to ``--reports``.
   The KPI analyst joins only when the server's ClickHouse answers (``/ready``).
3. **The verdict**: the database checks once the worker drained, then the SLO table
   (:mod:`loadtests.slo`). Also prints the CPU each process used during the run (the box
   has two cores shared by load generator, servers and stores: the first thing that
   limits a run). Exit status: the verdict's (0 = every SLO PASS), 2 if Locust failed.

The defaults finish in about 2.5 minutes (120 s of load, ~15 s to set up, ~10 s of
checks and teardown).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.common import fresh_run, server, wait_healthy
from loadtests import accounts, dbchecks, slo

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HOST = "http://127.0.0.1:8000"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default=os.environ.get("LOADTEST_HOST") or DEFAULT_HOST)
    p.add_argument("--users", type=int, default=_env_int("LOADTEST_USERS", 200))
    p.add_argument("--spawn-rate", type=float, default=_env_int("LOADTEST_SPAWN_RATE", 10))
    p.add_argument("--duration", type=int, default=_env_int("LOADTEST_DURATION", 120))
    p.add_argument("--web-processes", type=int, default=_env_int("CC_WEB_PROCESSES", 2))
    p.add_argument(
        "--worker-lanes",
        type=int,
        choices=(0, 1),
        default=_env_int("LOADTEST_WORKER_LANES", 0),
        help="1: two workers (--lane live at nice 0, --lane bulk at CC_WORKER_NICE)",
    )
    p.add_argument("--think", default=os.environ.get("LOADTEST_THINK_S", "1,3"))
    p.add_argument(
        "--socket-share", type=float, default=float(os.environ.get("LOADTEST_SOCKET_SHARE", 0.5))
    )
    p.add_argument(
        "--signup-share",
        type=float,
        default=float(os.environ.get("LOADTEST_SIGNUP_SHARE", 0.1)),
        help="share of players who sign up; the others log in to accounts made before the run",
    )
    p.add_argument("--reports", type=Path, default=ROOT / "loadtests" / "reports")
    p.add_argument(
        "--require-running",
        action="store_true",
        help="fail instead of starting a system when nothing answers at --host",
    )
    return p.parse_args(argv)


@contextmanager
def system(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """``(base URL, database URL)`` of the system under test (module docstring, step 1)."""
    if wait_healthy(args.host, 3):
        print(f"loadtest: using the server at {args.host} (database: DATABASE_URL)", flush=True)
        yield args.host.rstrip("/"), os.environ["DATABASE_URL"]
        return
    if args.require_running:
        sys.exit(f"loadtest: nothing answers at {args.host}")
    print(
        f"loadtest: no server at {args.host}; starting one: fresh seeded database,"
        f" {args.web_processes} web processes + "
        + ("2 workers (live, bulk lanes)" if args.worker_lanes else "1 worker"),
        flush=True,
    )
    with (
        fresh_run(clickhouse=True),
        server(
            {"CC_WEB_PROCESSES": str(args.web_processes)},
            worker=True,
            lanes=bool(args.worker_lanes),
        ) as base,
    ):
        print(f"loadtest: system up at {base}", flush=True)
        yield base, os.environ["DATABASE_URL"]


def kpi_availability(base: str) -> tuple[bool, str | None]:
    """Whether the server's ClickHouse answers; if not, why the KPI SLO is skipped."""
    try:
        with urllib.request.urlopen(base + "/ready", timeout=5) as r:
            status = json.loads(r.read())["checks"].get("clickhouse", "unknown")
    except (OSError, ValueError, KeyError) as exc:
        return False, f"/ready did not answer ({exc})"
    if status == "up":
        return True, None
    if status == "disabled":
        return False, "ClickHouse is not configured on the server (CLICKHOUSE_URL empty)"
    return False, f"the server's ClickHouse is {status} (/ready)"


class CpuSampler:
    """CPU used per kind of process during the run (``top``, summed over the run): each
    process's user+system time at its first and last sighting, every ``every`` seconds.
    Web, worker and Locust are this run's own processes. PostgreSQL backends are split by
    the database in their title (this run's / others': background processes and other
    users of the shared server); Redis, ClickHouse and Kafka are the machine's, whoever
    else uses them. Short-lived processes seen by no sample are missed (argon2 is not a
    process: signups count as web CPU)."""

    SHARED = ("postgres: this database", "postgres: other", "redis", "clickhouse", "kafka")

    def __init__(self, database: str, every: float = 5.0) -> None:
        self.kinds: tuple[tuple[str, Callable[[str, str], bool]], ...] = (
            ("web", lambda name, cmd: "ccweb.server" in cmd),
            ("worker", lambda name, cmd: " -m worker" in cmd),
            ("locust", lambda name, cmd: " -m locust" in cmd),
            # a backend's title names its database: "postgres: 15/main: user db host(...)"
            (
                "postgres: this database",
                lambda name, cmd: name.startswith("postgres") and f" {database} " in cmd,
            ),
            ("postgres: other", lambda name, cmd: name.startswith("postgres")),
            ("redis", lambda name, cmd: name.startswith("redis-server")),
            ("clickhouse", lambda name, cmd: "clickhouse" in name),
            ("kafka", lambda name, cmd: "tansu" in name),
        )
        self.own: set[int] = set()
        self.every = every
        self.first: dict[int, tuple[str, float]] = {}
        self.last: dict[int, float] = {}
        self.stop_event = threading.Event()
        self.started = time.monotonic()
        self.machine_start = psutil.cpu_times()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _kind(self, proc: psutil.Process) -> str | None:
        try:
            name, cmd = proc.name(), " ".join(proc.cmdline())
        except (psutil.Error, OSError):
            return None
        mine = proc.pid in self.own
        for kind, match in self.kinds:
            if match(name, cmd) and (mine or kind in self.SHARED):
                return kind
        return None

    def _sample(self) -> None:
        me = psutil.Process()
        self.own = {p.pid for p in me.children(recursive=True)}
        for proc in psutil.process_iter():
            kind = self._kind(proc)
            if kind is None:
                continue
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue
            used = t.user + t.system
            self.first.setdefault(proc.pid, (kind, used))
            self.last[proc.pid] = used

    def _loop(self) -> None:
        while not self.stop_event.wait(self.every):
            self._sample()

    def start(self) -> None:
        self._sample()
        self.thread.start()

    def stop(self) -> dict[str, Any]:
        self.stop_event.set()
        self.thread.join()
        seconds = time.monotonic() - self.started
        per_kind: dict[str, float] = {}
        for pid, (kind, used) in self.first.items():
            per_kind[kind] = per_kind.get(kind, 0.0) + self.last[pid] - used
        end = psutil.cpu_times()
        busy = (end.user + end.system + end.nice) - (
            self.machine_start.user + self.machine_start.system + self.machine_start.nice
        )
        cores = psutil.cpu_count() or 1
        out = {kind: round(100 * used / seconds) for kind, used in sorted(per_kind.items())}
        out["machine (all processes)"] = round(100 * busy / seconds)
        out["other processes"] = max(
            0,
            out["machine (all processes)"]
            - sum(v for k, v in out.items() if k != "machine (all processes)"),
        )
        return {"seconds": round(seconds, 1), "cores": cores, "percent_of_one_core": out}


def run_locust(args: argparse.Namespace, base: str, kpi: bool) -> int:
    args.reports.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LOADTEST_SUMMARY": str(args.reports / "summary.json"),
        "LOADTEST_KPI": "1" if kpi else "0",
        "LOADTEST_THINK_S": args.think,
        "LOADTEST_SOCKET_SHARE": str(args.socket_share),
        "LOADTEST_SIGNUP_SHARE": str(args.signup_share),
        "LOADTEST_ACCOUNTS": str(args.reports / "accounts.txt"),
    }
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(ROOT / "loadtests" / "locustfile.py"),
        "--headless",
        "--host",
        base,
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.spawn_rate),
        "--run-time",
        f"{args.duration}s",
        "--stop-timeout",
        "5",
        "--csv",
        str(args.reports / "loadtest"),
        "--html",
        str(args.reports / "loadtest.html"),
        "--exit-code-on-error",
        "0",
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    print("loadtest: " + " ".join(cmd[2:]), flush=True)
    return subprocess.run(cmd, cwd=ROOT, env=env, check=False).returncode


def raise_fd_limit() -> None:
    """Sockets: Locust holds two per socket player, the server two per WebSocket."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_fd_limit()
    summary_path = args.reports / "summary.json"
    summary_path.unlink(missing_ok=True)
    with system(args) as (base, database_url):
        kpi, kpi_reason = kpi_availability(base)
        if not kpi:
            print(f"loadtest: KPI SLO will be SKIPPED: {kpi_reason}", flush=True)
        made = accounts.create(database_url, args.users, args.reports / "accounts.txt")
        print(f"loadtest: {len(made)} returning players' accounts made", flush=True)
        since = datetime.now(UTC)
        cpu = CpuSampler(database_url.rsplit("/", 1)[-1].split("?", 1)[0])
        cpu.start()
        rc = run_locust(args, base, kpi)
        usage = cpu.stop()
        if rc != 0 or not summary_path.exists():
            print(f"loadtest: Locust failed (exit {rc}, summary written: {summary_path.exists()})")
            return 2
        print("loadtest: checking the database (waiting for the worker to drain) ...", flush=True)
        db = dbchecks.run(database_url, since)
    print()
    print(
        f"CPU during the run ({usage['seconds']} s, {usage['cores']} cores; % of one core): "
        + ", ".join(f"{k} {v}%" for k, v in usage["percent_of_one_core"].items())
    )
    (args.reports / "run.json").write_text(
        json.dumps(
            {
                "host": base,
                "users": args.users,
                "spawn_rate": args.spawn_rate,
                "duration_s": args.duration,
                "web_processes": args.web_processes,
                "worker_lanes": args.worker_lanes,
                "think_s": args.think,
                "socket_share": args.socket_share,
                "signup_share": args.signup_share,
                "started_at": since.isoformat(),
                "cpu": usage,
                "kpi_skip_reason": kpi_reason,
            },
            indent=2,
        )
        + "\n"
    )
    print()
    return slo.report(summary_path, db, kpi_reason)


if __name__ == "__main__":
    sys.exit(main())
