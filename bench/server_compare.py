"""Benchmark: two (or more) ways of serving the same app, at equal settings.

Answers "is server B as good as server A here" for choices such as gunicorn's gevent
worker against the project's pre-fork pywsgi server (PERFORMANCE.md trap 7: gunicorn
gevent showed 200–400 ms p99 tails), or a server change against the current code. Every
variant runs at the same time on its own port against one fresh database, with the same
process count, connections, players and wrk settings, and the runs are interleaved
(A B A B …, route by route): this 2-core box drifts by tens of percent between minutes,
so only runs taken side by side compare. Reported per variant and route: median req/s,
p50, p99 and web CPU per request (the server's whole process tree, from /proc), plus
every run's p99.

    scripts/with-services.sh .venv/bin/python -m bench.server_compare
    ... -m bench.server_compare --variant 'mine=.venv/bin/python /tmp/variant.py'

A ``--variant`` command gets ``PORT``/``CC_WEB_PROCESSES`` in its environment and may
use ``{port}`` / ``{processes}`` in its arguments.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench.common import ROOT, free_port, fresh_run, run_wrk_players, wait_healthy
from bench.cpu_cost import cpu_seconds
from bench.play import players

BUILTIN = {
    "prefork": "{python} -m ccweb.server",
    "gunicorn": (
        "{python} -m gunicorn -c bench/gunicorn_conf.py -k gevent -w {processes} --reuse-port"
        " -b 127.0.0.1:{port} ccweb:create_app()"
    ),
}
ROUTES = {
    "health": ("GET", "/health", None),
    "spin": ("POST", "/api/games/slot/spin", '{"bet": 10}'),
    "dashboard": ("GET", "/api/dashboard", None),
}


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (the server's parent and its web processes)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        path = Path(f"/proc/{p}/task/{p}/children")
        if path.exists():
            todo.extend(int(c) for c in path.read_text().split())
    return out


def tree_cpu(pid: int) -> float:
    total = 0.0
    for p in tree(pid):
        try:
            total += cpu_seconds(p)
        except OSError:
            continue
    return total


@contextmanager
def serve(command: str, processes: int) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "CC_HOST": "127.0.0.1",
        "CC_WEB_PROCESSES": str(processes),
        "CC_ACCESS_LOG": "0",
        "CC_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    argv = shlex.split(command.format(python=sys.executable, port=port, processes=processes))
    proc = subprocess.Popen(argv, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_healthy(base, 200):
            raise RuntimeError(f"{command} did not start")
        time.sleep(1.0)  # every process up (the first answer proves only one)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", default="prefork,gunicorn", help="built-in names")
    parser.add_argument("--variant", action="append", default=[], help="NAME=COMMAND")
    parser.add_argument("--routes", default="health,spin")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--players", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (median)")
    args = parser.parse_args()
    commands = {n: BUILTIN[n] for n in filter(None, args.variants.split(","))}
    for item in args.variant:
        name, _, command = item.partition("=")
        commands[name] = command
    routes = [r for r in args.routes.split(",") if r]
    with ExitStack() as stack:
        servers = {n: stack.enter_context(serve(c, args.processes)) for n, c in commands.items()}
        first = next(iter(servers.values()))[0]
        tokens = players(first, args.players)
        results: dict[tuple[str, str], list[dict[str, float]]] = {}
        for base, _ in servers.values():  # warm-up: every process, every route
            for route in routes:
                method, path, body = ROUTES[route]
                run_wrk_players(
                    base, tokens, method=method, path=path, body=body, connections=16, seconds=2
                )
        for _ in range(args.repeat):
            for route in routes:
                method, path, body = ROUTES[route]
                for name, (base, pid) in servers.items():
                    before = tree_cpu(pid)
                    r = run_wrk_players(
                        base,
                        tokens,
                        method=method,
                        path=path,
                        body=body,
                        connections=args.connections,
                        seconds=args.seconds,
                    )
                    r["cpu_ms"] = 1000 * (tree_cpu(pid) - before) / max(1.0, r["requests"])
                    results.setdefault((route, name), []).append(r)
        print(
            f"{args.processes} web processes each, {args.connections} connections, wrk -t2,"
            f" {args.seconds}s per run, {args.repeat} interleaved rounds (medians)"
        )
        for route in routes:
            for name in servers:
                runs = results[(route, name)]

                def med(key: str, runs: list[dict[str, float]] = runs) -> float:
                    return statistics.median(r[key] for r in runs)

                print(
                    f"  {route:<7} {name:<12} {med('rps'):7.0f} req/s  p50 {med('p50_ms'):6.1f}"
                    f"  p99 {med('p99_ms'):6.1f} ms  cpu {med('cpu_ms'):.3f} ms/req"
                    f"  errors {sum(r['errors'] for r in runs):.0f}"
                    f"  p99 per run {[round(r['p99_ms'], 1) for r in runs]}"
                )


if __name__ == "__main__":
    with fresh_run():
        main()
