"""Benchmark: cache-miss renders of the profile (``dashboard.service.profile``) on one
connection, the statement count per render and the render time (p50/p95).

The profile is the slowest read of ``make loadtest``: on a 2-core box each database
round trip is a chance to wait for a core, so the number of statements matters as much
as their cost. The player here has something in every section (game stats, achievements,
actions, an active participation, items, purchases) so no subquery is trivially empty.

    scripts/with-services.sh .venv/bin/python -m bench.profile_render
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from sqlalchemy import event, text

from bench.common import fresh_run

_SEED = [
    """INSERT INTO users (site_id, nickname, password_hash, gold_balance, experience_points)
       VALUES ('bench_profile', 'bench', 'x', 5000, 1234)""",
    """INSERT INTO game_stats (user_id, game_type, total, wins, losses, max_win)
       SELECT :uid, g, 40, 15, 25, 900 FROM unnest(CAST(:games AS text[])) g""",
    """INSERT INTO achievements (code, title, requirements, reward_items, sort_order)
       SELECT 'bench_' || i, 'Bench ' || i,
              jsonb_build_array(jsonb_build_object('type', 'plays', 'target', i * 10)),
              jsonb_build_array(jsonb_build_object('type', 'gold', 'quantity', 100)), i
       FROM generate_series(1, 8) i""",
    """INSERT INTO user_achievements (user_id, achievement_id)
       SELECT :uid, id FROM achievements ORDER BY id LIMIT 3""",
    """INSERT INTO user_actions (user_id, action_type, context)
       SELECT :uid, 'click', jsonb_build_object('n', i) FROM generate_series(1, 30) i""",
    """INSERT INTO live_events (title, type, starts_at, ends_at, requirements, reward_items)
       SELECT 'Event ' || i, 'limited', now() - interval '1 day', now() + interval '2 days',
              jsonb_build_array(jsonb_build_object('type', 'plays', 'target', 50)),
              jsonb_build_array(jsonb_build_object('type', 'gold', 'quantity', 100))
       FROM generate_series(1, 3) i""",
    """INSERT INTO event_participations (user_id, event_id, progress)
       SELECT :uid, id, ARRAY[7]::bigint[] FROM live_events ORDER BY id LIMIT 2""",
    """INSERT INTO user_items (user_id, item_code, quantity)
       VALUES (:uid, 'booster', 3), (:uid, 'frame_gold', 1), (:uid, 'ticket', 12)""",
    """INSERT INTO shop_products (sku, name, category, price_gold)
       VALUES ('bench_item', 'Bench item', 'item', 10)""",
    """INSERT INTO shop_purchases (user_id, product_id, idempotency_key, sku, category,
           quantity, price_gold, points_price, gold_amount, gold_delta, items, limit_once,
           receipt, integrity_hash, signature, signature_version, response)
       SELECT :uid, p.id, 'bench-' || i, p.sku, p.category, 1, 10, 0, 0, -10, '[]', false,
              '{}', 'h', 's', 1, '{}'
       FROM shop_products p, generate_series(1, 5) i WHERE p.sku = 'bench_item'""",
]


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--renders", type=int, default=500)
    args = parser.parse_args()

    import psycopg2.extensions

    from ccweb.config import Settings
    from ccweb.dashboard import service
    from ccweb.db import init_engine
    from ccweb.games.models import GAME_TYPES

    engine = init_engine(Settings.from_env())
    with engine.begin() as conn:
        uid = conn.execute(text(_SEED[0] + " RETURNING id")).scalar_one()
        for sql in _SEED[1:]:
            conn.execute(text(sql), {"uid": uid, "games": list(GAME_TYPES)})

    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    class CountingCursor(psycopg2.extensions.cursor):
        """``ccweb.pg`` runs its prepared statements on the DBAPI cursor, which the
        SQLAlchemy event does not see: count its ``EXECUTE`` here (not ``PREPARE``)."""

        def execute(self, query: Any, vars: Any = None) -> None:
            nonlocal statements
            if str(query).startswith("EXECUTE "):
                statements += 1
            super().execute(query, vars)

    event.listen(engine, "before_cursor_execute", count)
    with engine.connect() as conn:
        conn.connection.dbapi_connection.cursor_factory = CountingCursor  # type: ignore[union-attr]
        body, _ = service.profile(conn, uid)  # warm-up: prepares the statements once
        times: list[float] = []
        counts: list[int] = []
        for _ in range(args.renders):
            statements = 0
            started = time.perf_counter()
            body, _ = service.profile(conn, uid)
            times.append((time.perf_counter() - started) * 1000)
            counts.append(statements)
        conn.rollback()
    print(
        f"profile render x{args.renders} (cache miss, one connection): "
        f"p50 {statistics.median(times):.2f} ms, p95 {_pct(times, 0.95):.2f} ms, "
        f"statements/render mean {statistics.mean(counts):.2f} "
        f"(min {min(counts)}, max {max(counts)})"
    )
    print(
        f"  sections: {len(body['achievements'])} achievements, "
        f"{len(body['recent_actions'])} actions, "
        f"{len(body['active_participations'])} participations, "
        f"{len(body['inventory'])} items, {body['purchases_count']} purchases"
    )


if __name__ == "__main__":
    with fresh_run():
        main()
