"""Benchmark: ``GET /api/auth/me`` on ONE web process (gevent, pywsgi, TCP_NODELAY).

Each request is the full authenticated read path: JWT verify, one Redis MGET for the
denylist, one primary-key SELECT. Load comes from wrk on the same 2-core box, so the
figures are comparable to ../shared/PERFORMANCE.md (printed as ratios).

    make bench            # or: scripts/with-services.sh .venv/bin/python bench/auth_me.py
"""

from __future__ import annotations

import argparse

from bench.common import fresh_run, new_player, run_wrk, server

# PERFORMANCE.md reference figures (same machine class)
PEER_READ_RPS = 6518  # Nakama authenticated account read, 16 conns
PYWSGI_JSON_RPS = 6369  # bare Flask + gevent pywsgi JSON route, 64 conns
PYWSGI_SELECT1_RPS = 4795  # same route doing SELECT 1 through psycogreen
PROTOTYPE_CACHED_READ_RPS = 2349  # JWT + 2 Redis GETs, one process


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--processes", type=int, default=1, help="CC_WEB_PROCESSES")
    args = parser.parse_args()
    with server({"CC_WEB_PROCESSES": str(args.processes)}) as base:
        token = new_player(base)["access_token"]
        run_wrk(base + "/api/auth/me", token=token, connections=16, seconds=2)  # warm-up
        base_health = run_wrk(base + "/health", token=token, connections=16, seconds=args.seconds)
        print(
            f"baseline GET /health (full middleware, no I/O), c=16: "
            f"{base_health['rps']:.0f} req/s, p50 {base_health['p50_ms']:.1f} ms"
        )
        print(f"GET /api/auth/me, {args.processes} process(es), wrk -t2, {args.seconds}s per run")
        for conns in args.connections:
            r = run_wrk(base + "/api/auth/me", token=token, connections=conns, seconds=args.seconds)
            print(
                f"  c={conns:<3} {r['rps']:8.0f} req/s   p50 {r['p50_ms']:.1f} ms   "
                f"p90 {r['p90_ms']:.1f} ms   p99 {r['p99_ms']:.1f} ms   non-2xx {r['non_2xx']:.0f}"
            )
            print(
                f"         vs peer read {r['rps'] / PEER_READ_RPS:.2f}x, "
                f"vs bare pywsgi SELECT 1 {r['rps'] / PYWSGI_SELECT1_RPS:.2f}x, "
                f"vs prototype cached read {r['rps'] / PROTOTYPE_CACHED_READ_RPS:.2f}x"
            )


if __name__ == "__main__":
    with fresh_run():
        main()
