"""Benchmark: what reading a feature flag costs a request (issue 13: no round trip).

In a database of its own (``bench.common.fresh_run``) it stores ``--flags`` flags (a third
client-visible, some with tier/segment targeting and partial rollouts), then times in
this process, after the first load:

- ``flags.value(key)`` — a server flag (the games' kill switch and XP per round are two of
  these on every round);
- ``flags.value_for(key, player, tier, segment)`` — targeting and a 50 % rollout
  (sha256 of key:player);
- ``flags.client_flags(player, tier, segment)`` — the whole ``GET /api/flags`` body;

and, for scale, one Redis ``GET`` and one PostgreSQL ``SELECT 1`` on an open connection:
the round trip a flag read would cost if it were not served from the process's copy.

Usage: ``.venv/bin/python -m bench.flags [--flags 40] [--n 200000]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from bench.common import fresh_run


def per_call_us(fn: Callable[[], Any], n: int) -> float:
    for _ in range(min(n, 1000)):
        fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flags", type=int, default=40)
    parser.add_argument("--n", type=int, default=200_000)
    args = parser.parse_args()
    with fresh_run():
        from sqlalchemy import text

        from ccweb import db
        from ccweb.flags import service
        from ccweb.redis_client import get_redis

        with db.unit_of_work() as s:
            for i in range(args.flags):
                service.put(
                    s,
                    f"bench.flag{i:02d}",
                    {
                        "value": i % 2 == 0,
                        "client_visible": i % 3 == 0,
                        "rollout_percent": 50 if i % 4 == 0 else 100,
                        "target_tiers": ["VIP", "PREMIUM"] if i % 5 == 0 else None,
                        "target_segments": ["Whale", "Medium"] if i % 7 == 0 else None,
                    },
                )
        service.invalidate_cache()
        service.value("bench.flag00")  # first load
        rows = [
            (
                "flags.value (server flag)",
                per_call_us(lambda: service.value("bench.flag01"), args.n),
            ),
            (
                "flags.value (registry default, no row)",
                per_call_us(lambda: service.value("games.slot.enabled"), args.n),
            ),
            (
                "flags.value_for (50 % rollout, targeted)",
                per_call_us(
                    lambda: service.value_for("bench.flag00", 12345, "VIP", "Whale"), args.n
                ),
            ),
            (
                f"flags.client_flags ({args.flags} flags)",
                per_call_us(lambda: service.client_flags(12345, "VIP", "Whale"), args.n // 20),
            ),
        ]
        rds = get_redis()
        rows.append(("for scale: Redis GET round trip", per_call_us(lambda: rds.get("x"), 5000)))
        with db.engine().connect() as conn:
            q = text("SELECT 1")
            rows.append(
                ("for scale: PostgreSQL SELECT 1", per_call_us(lambda: conn.execute(q), 5000))
            )
        print(f"{'operation':45} {'µs/call':>9}")
        for name, us in rows:
            print(f"{name:45} {us:9.2f}")


if __name__ == "__main__":
    main()
