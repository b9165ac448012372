"""Benchmark: the computation behind ``GET /api/admin/stats`` (issue 13) on a big database.

What it does:

1. Creates a database of its own (``bench.common.fresh_run``: migrated and seeded,
   dropped at the end) and fills it with ``generate_series`` (SQL only, about a minute):
   ``--users`` players (default 100 000) created over a year, ``--ledger-per-user``
   ledger rows each (default 10 → 1 000 000) whose sum is the player's balance, 30 days
   of ``user_daily_activity`` (40 % of the players a day), ``--purchases`` successful
   purchases (a tenth of them conversions, some pending or voided) and ``--outbox`` rows
   of the last 24 h (default 1 000 000 ≈ 12 events/s all day; 1 % ``shop.purchase``, a
   third of those failed), the relay cursor 50 rows from the end. VACUUM ANALYZE, as
   autovacuum would have done on a live database.
2. Times each SQL statement of :func:`ccweb.admin.stats.compute` alone, and the full
   ledger sum the fold avoids (``--reps`` runs: p50 / p95 / max); then the computations
   that fold the ledger from nothing, :func:`~ccweb.admin.stats.compute` with the ledger
   folded (``--reps`` runs), one computation after ``--tail`` new ledger rows (the rows
   it sums), and a cache hit (:func:`ccweb.admin.stats.get`).
3. ``--what-if`` then adds the indexes the slow statements want and measures again
   (they are not in the schema: the numbers say whether they are worth a migration).

``--db NAME`` measures a database loaded earlier (no load, nothing dropped). Usage::

    .venv/bin/python -m bench.admin_stats [--users 100000] [--ledger-per-user 10]
        [--outbox 1000000] [--purchases 100000] [--reps 30] [--tail 100000] [--what-if]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from bench.common import _with_database as with_database
from bench.common import fresh_run

LOAD = [
    (
        "users",
        """
        INSERT INTO users (site_id, nickname, password_hash, created_at)
        SELECT 'bench' || i, 'bn' || i, 'x',
               now() - make_interval(secs => (i % 365) * 86400 + (i % 86400))
        FROM generate_series(1, :users) AS i
        """,
    ),
    (
        "wallet_ledger",
        """
        INSERT INTO wallet_ledger (user_id, delta_gold, balance_after, source_type,
                                   idempotency_key, created_at)
        SELECT u.id, d.delta,
               sum(d.delta) OVER (PARTITION BY u.id ORDER BY k.k), 'bench',
               'bench:' || u.id || ':' || k.k,
               u.created_at + make_interval(secs => k.k * 3600)
        FROM users u
        CROSS JOIN generate_series(1, :per_user) AS k(k)
        CROSS JOIN LATERAL (SELECT 100 + (u.id * 7 + k.k * 13) % 900 AS delta) d
        WHERE u.site_id LIKE 'bench%'
        ORDER BY u.created_at, u.id, k.k
        """,
    ),
    (
        "users.gold_balance",
        """
        UPDATE users u SET gold_balance = l.total
        FROM (SELECT user_id, sum(delta_gold) AS total FROM wallet_ledger
              WHERE source_type = 'bench' GROUP BY user_id) l
        WHERE l.user_id = u.id
        """,
    ),
    (
        "user_daily_activity",
        """
        INSERT INTO user_daily_activity (user_id, day, events, last_event_type, last_event_at)
        SELECT u.id, current_date - d, 1 + u.id % 40, 'game.round', now()
        FROM generate_series(0, 29) AS d
        JOIN users u ON u.site_id LIKE 'bench%' AND (u.id + d) % 5 < 2
        ORDER BY d DESC, u.id
        """,
    ),
    (
        "shop_purchases",
        """
        INSERT INTO shop_purchases (user_id, product_id, idempotency_key, sku, category,
            quantity, price_gold, points_price, gold_amount, gold_delta, items, limit_once,
            status, settlement_status, receipt, integrity_hash, signature,
            signature_version, response, created_at)
        SELECT u.id, p.id, 'bench-buy-' || i, p.sku, p.category, 1, p.price_gold,
               p.points_price, p.gold_amount, p.gold_amount - p.price_gold, '[]'::jsonb,
               false, 'success',
               CASE WHEN i % 10 = 0 THEN (CASE WHEN i % 30 = 0 THEN 'voided'
                                               WHEN i % 20 = 0 THEN 'pending'
                                               ELSE 'settled' END) END,
               '{}'::jsonb, md5(i::text), md5(i::text), 1, '{}'::jsonb,
               now() - make_interval(secs => (:purchases - i) * 30)
        FROM generate_series(1, :purchases) AS i
        JOIN users u ON u.site_id = 'bench' || (1 + i * 7919 % :users)
        CROSS JOIN LATERAL (SELECT * FROM shop_products ORDER BY id LIMIT 1) p
        """,
    ),
    (
        "outbox",
        """
        INSERT INTO outbox (event_id, event_type, user_id, partition, envelope, txid,
                            created_at)
        SELECT gen_random_uuid(), t.type, 1000 + i % 100000, i % 4,
               jsonb_build_object('event_id', gen_random_uuid(), 'event_type', t.type,
                   'user_id', 1000 + i % 100000, 'ts', now(),
                   'payload', jsonb_build_object(
                       'status', CASE WHEN t.type = 'shop.purchase' AND i % 3 = 0
                                      THEN 'failed' ELSE 'success' END,
                       'bet', 100, 'payout', i % 300, 'game_type', 'slot',
                       'round_id', i, 'gold_balance', 12345)),
               1000 + i,
               now() - make_interval(secs => (:outbox - i) * 86000.0 / :outbox)
        FROM generate_series(1, :outbox) AS i
        CROSS JOIN LATERAL (SELECT CASE WHEN i % 100 = 0 THEN 'shop.purchase'
                                        ELSE 'game.round' END AS type) t
        """,
    ),
    (
        "outbox_relay_cursor",
        """
        INSERT INTO outbox_relay_cursor (name, txid, last_id)
        SELECT 'default', txid, id FROM outbox ORDER BY txid DESC, id DESC OFFSET 50 LIMIT 1
        ON CONFLICT (name) DO UPDATE SET txid = EXCLUDED.txid, last_id = EXCLUDED.last_id
        """,
    ),
]

WHAT_IF = [
    "CREATE INDEX bench_uda_day ON user_daily_activity (day)",
    "CREATE INDEX bench_outbox_failed ON outbox (created_at)"
    " WHERE event_type = 'shop.purchase' AND (envelope -> 'payload' ->> 'status') = 'failed'",
]


def timed(fn: Callable[[], Any], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def summary(ms: list[float]) -> str:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"p50 {statistics.median(ms):8.1f} ms  p95 {p95:8.1f} ms  max {ms[-1]:8.1f} ms"


def statements() -> dict[str, tuple[Any, dict[str, Any]]]:
    from ccweb import db
    from ccweb.admin import ledger_fold, stats
    from ccweb.events import SHOP_PURCHASE
    from ccweb.outbox.relay import BACKLOG, CURSOR, CURSOR_POSITION

    now = datetime.now(UTC)
    day_start = datetime(now.year, now.month, now.day, tzinfo=UTC)
    with db.engine().connect() as conn:
        cursor = conn.execute(CURSOR_POSITION, {"name": CURSOR}).one()
    return {
        "users (players, new today, sum balance)": (stats._USERS, {"day_start": day_start}),
        "DAU": (stats._DAU, {"day": day_start.date()}),
        "purchases": (stats._PURCHASES, {"day_start": day_start}),
        "failed purchases today (outbox)": (
            stats._FAILED,
            {"day_start": day_start, "type": SHOP_PURCHASE},
        ),
        "outbox pending + oldest": (
            BACKLOG,
            {"txid": cursor.txid, "last_id": cursor.last_id},
        ),
        "ledger: full sum (no fold)": (
            ledger_fold._LEDGER_TAIL,
            {"upto": 0, "fold_to": 0, "scan_to": ledger_fold._NO_END},
        ),
    }


TAIL = """
    WITH rows AS (
        INSERT INTO wallet_ledger (user_id, delta_gold, balance_after, source_type,
                                   idempotency_key)
        SELECT u.id, 1, u.gold_balance + 1, 'bench',
               'bench-tail:' || u.id || ':' || gen_random_uuid()
        FROM generate_series(1, :n) AS i
        JOIN users u ON u.site_id = 'bench' || (1 + i % :users)
        RETURNING user_id
    )
    UPDATE users u SET gold_balance = u.gold_balance + r.n
    FROM (SELECT user_id, count(*) AS n FROM rows GROUP BY user_id) r WHERE u.id = r.user_id
"""


def measure(reps: int, tail: int, users: int) -> None:
    from ccweb import db
    from ccweb.admin import ledger_fold, stats
    from ccweb.config import get_settings
    from ccweb.redis_client import get_redis

    settings = get_settings()
    print("statements alone:")
    for name, (sql, params) in statements().items():
        with db.engine().connect() as conn:
            conn.execute(sql, params).all()  # warm
            ms = timed(lambda sql=sql, params=params: conn.execute(sql, params).all(), reps)
        print(f"  {name:42s} {summary(ms)}")
    get_redis(settings).delete(ledger_fold.fold_key(settings))
    catch_up = []
    while True:
        doc = stats.compute(settings)
        catch_up.append(doc["compute_ms"])
        if not doc["gold"]["ledger_catching_up"]:
            break
    print(f"  ledger fold from nothing: {len(catch_up)} computations, ms: {catch_up}")
    steady = timed(lambda: stats.compute(settings), reps)
    print(f"  {'compute() (ledger folded)':42s} {summary(steady)}")
    with db.engine().connect() as conn:
        conn.execute(text("SET statement_timeout = 0"))
        conn.execute(text(TAIL), {"n": tail, "users": users})
        conn.commit()
    doc = stats.compute(settings)  # folds up to before the tail, sums the tail
    gold = doc["gold"]
    print(f"  compute() after {tail} new ledger rows: {doc['compute_ms']} ms, gold {gold}")
    stats.get(settings, fresh=True)
    hit = timed(lambda: stats.get(settings), reps)
    print(f"  {'get() cache hit':42s} {summary(hit)}")
    print("  document:", stats.compute(settings))


def load(args: argparse.Namespace) -> None:
    from ccweb import db

    params = {
        "users": args.users,
        "per_user": args.ledger_per_user,
        "purchases": args.purchases,
        "outbox": args.outbox,
    }
    with db.engine().connect() as conn:
        conn.execute(text("SET statement_timeout = 0"))
        for name, sql in LOAD:
            t0 = time.perf_counter()
            n = conn.execute(text(sql), params).rowcount
            conn.commit()
            print(f"load {name:22s} {n:>9} rows  {time.perf_counter() - t0:6.1f} s")
    with db.engine().connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def run(args: argparse.Namespace) -> None:
    from ccweb import db
    from ccweb.config import Settings, set_settings

    set_settings(Settings.from_env())
    if not args.db:
        load(args)
    with db.engine().connect() as conn:
        sizes = conn.execute(
            text(
                "SELECT relname, n_live_tup, pg_size_pretty(pg_total_relation_size(relid))"
                " FROM pg_stat_user_tables WHERE relname IN ('users', 'wallet_ledger',"
                " 'user_daily_activity', 'shop_purchases', 'outbox') ORDER BY relname"
            )
        ).all()
    for rel, rows, size in sizes:
        print(f"  {rel:22s} {rows:>9} rows {size:>9}")
    measure(args.reps, args.tail, args.users)
    if args.what_if:
        with db.engine().connect() as conn:
            conn.execute(text("SET statement_timeout = 0"))
            for ddl in WHAT_IF:
                conn.execute(text(ddl))
            conn.commit()
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        print("with the what-if indexes:", "; ".join(WHAT_IF))
        measure(args.reps, args.tail, args.users)
        if args.db:  # leave the database as it was
            with db.engine().connect() as conn:
                conn.execute(text("DROP INDEX bench_uda_day, bench_outbox_failed"))
                conn.commit()
    db.engine().dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--ledger-per-user", type=int, default=10)
    ap.add_argument("--purchases", type=int, default=100_000)
    ap.add_argument("--outbox", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--tail", type=int, default=100_000, help="ledger rows added, then summed")
    ap.add_argument("--what-if", action="store_true", help="then again with the indexes")
    ap.add_argument("--db", help="measure this loaded database (DATABASE_URL's server)")
    args = ap.parse_args()
    if args.db:
        os.environ["DATABASE_URL"] = with_database(
            os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/casino"),
            args.db,
        )
        run(args)
    else:
        with fresh_run():
            run(args)


if __name__ == "__main__":
    main()
