"""Shared helpers for benchmarks: start the real server, make a player, run wrk."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def fresh_run(redis_prefix: bool = True, clickhouse: bool = False) -> Iterator[str]:
    """Run a benchmark on a database of its own (created, migrated and seeded now, dropped
    afterwards) and, unless told otherwise, its own Redis key prefix: results must not
    depend on what earlier runs left in the dev database (a 600 000-row outbox, dead
    tuples on the hot rows), and two databases' player ids must never share cached
    views. Sets ``DATABASE_URL``/``CC_REDIS_PREFIX`` for this process and the servers it
    starts. With ``clickhouse`` (and ``CLICKHOUSE_URL`` set) the ClickHouse database is a
    fresh one too: the KPI queries and ClickHouse's merges cost more with every run's
    events left in a shared one (KPI p95 36 → ~90 ms and ClickHouse 5 → 14 % of a core over
    a dozen load tests, loadtests/RESULTS.md)."""
    import psycopg2
    import redis

    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/casino")
    tag = uuid.uuid4().hex[:8]
    name = f"cc_bench_{tag}"
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "CC_REDIS_PREFIX", "CLICKHOUSE_URL")}
    os.environ["DATABASE_URL"] = _with_database(base, name)
    ch_base = os.environ.get("CLICKHOUSE_URL") or ""
    if clickhouse and ch_base:
        os.environ["CLICKHOUSE_URL"] = _with_database(ch_base, name)  # created by setup
    if redis_prefix:
        os.environ["CC_REDIS_PREFIX"] = f"ccbench{tag}"
    try:
        subprocess.run(
            [sys.executable, "-m", "ccweb.manage", "setup"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        yield name
    finally:
        if redis_prefix:
            client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
            keys = list(client.scan_iter(match=f"ccbench{tag}:*", count=1000))
            for i in range(0, len(keys), 1000):
                client.delete(*keys[i : i + 1000])
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        admin = psycopg2.connect(_with_database(base, "postgres"))
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
        if clickhouse and ch_base:
            from ccweb.analytics.clickhouse import new_client

            new_client(ch_base, database="default").execute(f"DROP DATABASE IF EXISTS {name}")


def _with_database(url: str, name: str) -> str:
    """``url`` naming database ``name`` (keeps a ``?host=/socket/dir`` query)."""
    head, sep, query = url.partition("?")
    return head.rsplit("/", 1)[0] + "/" + name + sep + query


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path is None and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, capture_output=True)
        path = shutil.which("wrk")
    if path is None:
        sys.exit("bench: needs wrk (apt-get install wrk)")
    return path


@contextmanager
def server(
    extra_env: dict[str, str] | None = None,
    worker: bool = False,
    worker_args: tuple[str, ...] = (),
    lanes: bool = False,
) -> Iterator[str]:
    """Run ``python -m ccweb.server`` on a free port (and ``python -m worker`` beside it,
    as in production, when ``worker``; with ``lanes``, two workers as ``make run`` starts
    them: ``--lane live`` at normal priority and ``--lane bulk`` at CC_WORKER_NICE)."""
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "CC_HOST": "127.0.0.1",
        "CC_ACCESS_LOG": "0",
        "CC_LOG_LEVEL": "WARNING",
        "CC_WORKER_NICE": os.environ.get("CC_WORKER_NICE", "10"),  # as `make run` does
        **(extra_env or {}),
    }
    proc = subprocess.Popen([sys.executable, "-m", "ccweb.server"], cwd=ROOT, env=env)
    workers = []
    if worker and lanes:
        live = {**env, "CC_WORKER_NICE": "0"}
        workers.append(_worker([*worker_args, "--lane", "live"], live))
        workers.append(_worker([*worker_args, "--lane", "bulk"], env))
    elif worker:
        workers.append(_worker(list(worker_args), env))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, 100)
        yield base
    finally:
        for p in (proc, *workers):
            p.terminate()
            p.wait(timeout=10)


def _worker(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "worker", *args], cwd=ROOT, env=env)


def wait_healthy(base: str, attempts: int) -> bool:
    """Poll ``/health`` every 0.1 s until it answers; False if it never did."""
    for _ in range(attempts):
        try:
            urllib.request.urlopen(base + "/health", timeout=0.5)
            return True
        except OSError:
            time.sleep(0.1)
    return False


def post_json(url: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req) as resp:
        result: dict[str, Any] = json.loads(resp.read())
        return result


def new_player(base: str) -> dict[str, Any]:
    name = "b" + uuid.uuid4().hex[:12]
    return post_json(
        base + "/api/auth/signup",
        {"site_id": name, "nickname": name[:20], "password": "bench-pass-1", "invite_code": "5858"},
    )


def run_wrk(
    url: str, *, token: str, connections: int, seconds: int, threads: int = 2
) -> dict[str, float]:
    """wrk with --latency; returns requests/s and p50/p90/p99 in ms, and error counts."""
    out = subprocess.run(
        [
            ensure_wrk(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50_ms": ms("50"),
        "p90_ms": ms("90"),
        "p99_ms": ms("99"),
        "non_2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": 0.0 if not errors else 1.0,
    }


def run_wrk_players(
    base: str,
    tokens: list[str],
    *,
    method: str,
    path: str,
    body: str | None = None,
    connections: int = 16,
    seconds: int = 10,
    threads: int = 2,
) -> dict[str, float]:
    """wrk over many players (bench/wrk_players.lua); returns req/s, p50/p95/p99 in ms and
    the number of non-2xx/socket errors."""
    env = {
        **os.environ,
        "BENCH_TOKENS": ",".join(tokens),
        "BENCH_METHOD": method,
        "BENCH_PATH": path,
        "BENCH_THREADS": str(threads),
    }
    if body is not None:
        env["BENCH_BODY"] = body
    out = subprocess.run(
        [
            ensure_wrk(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "-s",
            str(ROOT / "bench" / "wrk_players.lua"),
            base,
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    stats: dict[str, float] = json.loads(line[len("BENCH ") :])
    stats["rps"] = stats["requests"] / stats["seconds"]
    return stats
