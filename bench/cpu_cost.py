"""Benchmark: CPU milliseconds per request, by process (web, PostgreSQL, worker).

Latency percentiles on a shared 2-core VM swing ±30 % between identical runs; CPU time
per request (read from /proc around a wrk run, cheapest of ``--repeat`` runs, since other
tenants only ever add time) is much steadier and says where the cost is. One web
process, the worker beside it, 16 connections, 64 players.

    scripts/with-services.sh .venv/bin/python -m bench.cpu_cost
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

from bench.common import fresh_run, run_wrk_players, server
from bench.play import players

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def postgres_seconds() -> float:
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == "postgres":
                    total += cpu_seconds(int(entry))
            except OSError:
                continue  # exited while we looked
    return total


def pid_of(pattern: str) -> int:
    return int(subprocess.check_output(["pgrep", "-f", pattern]).split()[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3, help="report the cheapest run")
    parser.add_argument("--only", default="", help="comma-separated: spin,dashboard,auth/me")
    parser.add_argument("--worker-args", default="", help="e.g. '--no-relay'")
    args = parser.parse_args()
    with server(
        {"CC_WEB_PROCESSES": "1"}, worker=True, worker_args=tuple(args.worker_args.split())
    ) as base:
        tokens = players(base, 64)
        web, worker = pid_of("m ccweb.server"), pid_of("m worker")
        print("CPU ms per request (1 web process + worker, 16 connections)")
        for name, method, path, body in (
            ("spin", "POST", "/api/games/slot/spin", '{"bet": 10}'),
            ("dashboard", "GET", "/api/dashboard", None),
            ("auth/me", "GET", "/api/auth/me", None),
        ):
            if args.only and name not in args.only.split(","):
                continue
            runs = []
            for _ in range(args.repeat):
                before = cpu_seconds(web), postgres_seconds(), cpu_seconds(worker)
                r = run_wrk_players(
                    base,
                    tokens,
                    method=method,
                    path=path,
                    body=body,
                    connections=16,
                    seconds=args.seconds,
                )
                after = cpu_seconds(web), postgres_seconds(), cpu_seconds(worker)
                costs = [1000 * (a - b) / r["requests"] for a, b in zip(after, before, strict=True)]
                runs.append((sum(costs), costs, r))
            total, (web_ms, pg_ms, wk_ms), r = min(runs, key=lambda x: x[0])
            print(
                f"  {name:<10} web {web_ms:5.2f}  postgres {pg_ms:5.2f}  worker {wk_ms:5.2f}"
                f"  total {total:5.2f} ms   ({r['rps']:.0f} req/s, p95 {r['p95_ms']:.0f} ms;"
                f" cheapest of {args.repeat})"
            )


if __name__ == "__main__":
    with fresh_run():
        main()
