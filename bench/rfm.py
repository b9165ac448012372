"""Benchmark: the RFM batch and the incremental recompute at 100 000 players (issue 13).

What it does:

1. Creates a fresh database ``cc_bench_<hex>`` (migrated and seeded, dropped at the end:
   ``bench.common.fresh_run``) and its own Redis key prefix.
2. Generates, in SQL (``generate_series``, seconds): ``--players`` players and a
   heavy-tailed purchase history over the last 90 days — 35 % never bought, 25 % once,
   15 % twice, 10 % three times, 10 % 4–9, 4 % 10–30, 1 % whales with 30–150 purchases
   (≈ 3.2 per player, ≈ 320 000 rows at 100 000). Each player's purchases cluster around
   a last-active day skewed to the recent past (``90 × u²`` days ago) and spread over up
   to 30 days before it; gold prices 100–20 000 (cheap ones most often), one purchase in
   ten a conversion paid in points (90 % settled, 5 % pending, 5 % voided). Then
   ``VACUUM ANALYZE``.
3. Runs the batch (``ccweb.segments.jobs.batch``: one transaction, commit included)
   ``--runs`` times and prints players, purchases, seconds per run and label counts.
   The first run inserts every row; the later ones rewrite them (the nightly case).
4. Times the incremental recompute (``ccweb.segments.rfm.recompute`` in its own
   transaction, as the ``segments`` group runs it) of 1 buyer (``--reps`` times, p50 and
   max) and of 500 buyers at once.

``--explain`` also prints ``EXPLAIN (ANALYZE, BUFFERS)`` of one batch statement (rolled
back). Usage::

    .venv/bin/python -m bench.rfm [--players 100000] [--runs 3] [--reps 50]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from sqlalchemy import text

from bench.common import fresh_run
from ccweb import clock, db
from ccweb.config import Settings, set_settings
from ccweb.segments import jobs, rfm

_PLAYERS = """
    INSERT INTO users (site_id, nickname, password_hash, created_at)
    SELECT 'rfm' || g, 'rfm' || g, 'not-a-hash', :now - interval '1 year' * random()
    FROM generate_series(1, :n) AS g
"""

_PRODUCTS = """
    INSERT INTO shop_products (sku, name, category, price_gold, points_price, gold_amount)
    VALUES ('rfm_item', 'RFM item', 'item', 100, 0, 0),
           ('rfm_conv', 'RFM conversion', 'conversion', 0, 100, 1000)
    RETURNING id
"""

# per player: how many purchases (heavy-tailed), and the day they were last active
_PURCHASES = """
    WITH p AS (
        SELECT id AS user_id, random() AS u, 90 * random() ^ 2 AS last_day
        FROM users WHERE site_id LIKE 'rfm%'
    ),
    k AS (
        SELECT user_id, last_day,
               CASE WHEN u < 0.35 THEN 0 WHEN u < 0.60 THEN 1 WHEN u < 0.75 THEN 2
                    WHEN u < 0.85 THEN 3 WHEN u < 0.95 THEN 4 + floor(random() * 6)
                    WHEN u < 0.99 THEN 10 + floor(random() * 21)
                    ELSE 30 + floor(random() * 121) END :: int AS n
        FROM p
    ),
    rows AS (
        SELECT k.user_id, g,
               least(90, k.last_day + CASE WHEN g = 1 THEN 0 ELSE 30 * random() END) AS age,
               random() AS conv, random() AS settle, random() AS price
        FROM k CROSS JOIN LATERAL generate_series(1, k.n) AS g
    )
    INSERT INTO shop_purchases (user_id, product_id, idempotency_key, sku, category, quantity,
        price_gold, points_price, gold_amount, gold_delta, items, limit_once, status,
        settlement_status, receipt, integrity_hash, signature, signature_version, response,
        created_at)
    SELECT user_id,
           CASE WHEN conv < 0.1 THEN :conv ELSE :item END,
           'rfm-' || g,
           CASE WHEN conv < 0.1 THEN 'rfm_conv' ELSE 'rfm_item' END,
           CASE WHEN conv < 0.1 THEN 'conversion' ELSE 'item' END,
           1,
           CASE WHEN conv < 0.1 THEN 0
                WHEN price < 0.40 THEN 100 WHEN price < 0.70 THEN 500
                WHEN price < 0.85 THEN 1000 WHEN price < 0.95 THEN 5000 ELSE 20000 END,
           CASE WHEN conv < 0.1 THEN 100 + floor(price * 4900) ELSE 0 END,
           0, 0, '[]', false, 'success',
           CASE WHEN conv >= 0.1 THEN NULL WHEN settle < 0.90 THEN 'settled'
                WHEN settle < 0.95 THEN 'pending' ELSE 'voided' END,
           '{}', 'h', 's', 1, '{}',
           :now - interval '1 day' * age - interval '1 second' * floor(random() * 3600)
    FROM rows
"""


def fill(players: int) -> dict[str, Any]:
    now = clock.utcnow()
    started = time.perf_counter()
    with db.engine().begin() as conn:
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        conn.execute(text(_PLAYERS), {"n": players, "now": now})
        item, conv = conn.execute(text(_PRODUCTS)).scalars().all()
        conn.execute(text(_PURCHASES), {"now": now, "item": item, "conv": conv})
    with db.engine().connect() as conn:
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")
        auto.execute(text("SET statement_timeout = 0"))
        auto.execute(text("VACUUM ANALYZE"))
        stats = (
            conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM users WHERE site_id LIKE 'rfm%') AS players,"
                    " count(*) AS purchases, count(DISTINCT user_id) AS buyers,"
                    " count(*) FILTER (WHERE settlement_status = 'voided') AS voided,"
                    " max(n) AS most FROM shop_purchases"
                    " JOIN (SELECT user_id, count(*) AS n FROM shop_purchases GROUP BY user_id) c"
                    " USING (user_id)"
                )
            )
            .mappings()
            .one()
        )
    return {**stats, "seconds": round(time.perf_counter() - started, 1)}


def buyers(n: int) -> list[int]:
    with db.engine().connect() as conn:
        return list(
            conn.execute(
                text("SELECT user_id FROM user_segments ORDER BY random() LIMIT :n"), {"n": n}
            ).scalars()
        )


def time_recompute(ids: list[int]) -> float:
    started = time.perf_counter()
    db.in_transaction(lambda s: rfm.recompute(s, ids, clock.utcnow()))
    return time.perf_counter() - started


def explain() -> None:
    def tx(session) -> None:  # type: ignore[no-untyped-def]
        rfm.prepare_batch(session, statement_timeout_s=0)
        plan = session.execute(
            text("EXPLAIN (ANALYZE, BUFFERS) " + str(rfm._BATCH)), rfm.window(clock.utcnow())
        ).scalars()
        print("\n".join(plan))
        session.rollback()

    db.in_transaction(tx)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rfm")
    parser.add_argument("--players", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reps", type=int, default=50, help="single-player recomputes")
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args(argv)

    with fresh_run() as name:
        base = Settings.from_env()  # the worker's statement timeout, as where it runs
        settings = base.with_overrides(db_statement_timeout_ms=base.worker_statement_timeout_ms)
        set_settings(settings)
        db.init_engine(settings)
        print(f"database {name}")
        data = fill(args.players)
        print(
            f"generated {data['players']} players, {data['purchases']} purchases"
            f" ({data['buyers']} buyers, {data['voided']} voided, most {data['most']} by one)"
            f" in {data['seconds']} s"
        )
        cfg = jobs.SegmentConfig.from_env()
        for run in range(1, args.runs + 1):
            result = jobs.batch(clock.utcnow(), cfg)
            print(
                f"batch {run}: {result.seconds:6.2f} s  players {result.players}"
                f"  removed {result.removed}  changed {result.changed}  labels {result.labels}"
            )
        th = result.thresholds
        print(
            f"thresholds: m_p60 {th['m_p60']}  m_p95 {th['m_p95']}  f_cuts {th['f_cuts']}"
            f"  m_cuts {th['m_cuts']}  population {th['population']}"
        )
        ones = [time_recompute(buyers(1)) * 1000 for _ in range(args.reps)]
        print(
            f"recompute 1 player: p50 {statistics.median(ones):.1f} ms"
            f"  max {max(ones):.1f} ms  ({args.reps} runs, commit included)"
        )
        many = [time_recompute(buyers(500)) * 1000 for _ in range(5)]
        print(
            f"recompute 500 players: p50 {statistics.median(many):.1f} ms"
            f"  max {max(many):.1f} ms  (5 runs)"
        )
        if args.explain:
            explain()
        db.engine().dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
