"""Benchmark: the KPI query (``GET /api/admin/analytics/kpis``) over a 30-day range at
1 000 000 events (issue 12: p95 < 100 ms).

What it does:

1. Creates a fresh ClickHouse database ``cc_bench_kpi_<hex>`` on ``CLICKHOUSE_URL``
   (default ``clickhouse://127.0.0.1:9000/default``) and applies every migration
   (``ccweb.analytics.migrate``).
2. Generates ``--events`` SPEC §4 envelopes (``ccweb.events.make_envelope``) for
   ``--players`` players over ``--days`` UTC days: each player has a daily activity
   probability between 0.6 and 1.0; every active player-day gets at least one event and
   the rest are spread at random. The mix is mostly ``game.round`` with logins, shop
   purchases (a quarter refused), live-event progress (1-2 items), mission progress and
   claims (``event.claim`` + its ``reward.granted`` twin); ~2 % of players are heavy
   buyers, so there are whales.
3. Turns them into rows with ``ccweb.analytics.ingest.rows_of`` and inserts them in
   batches of 5 000 entries through the ingester's own INSERT path
   (``worker.handlers.analytics.insert``: ≤ 1 MB chunks), timing ingest rows/s.
   ``--replay F`` inserts a fraction F of the batches a second time, as a worker
   crashing between INSERT and ack would.
4. Waits until ClickHouse's background merges settle (no running merge for 2 s, at
   most ``--settle`` seconds) — nothing is forced with ``OPTIMIZE``: the query must be
   fast on the parts a live server has.
5. Checks that the KPI document equals the values computed here while generating (DAU,
   ARPDAU, claims, conversion, purchases, success rate, whales) and prints OK/MISMATCH.
6. Runs ``ccweb.analytics.kpis.kpis`` over the last 30 days ``--reps`` times (after 5
   warm-ups) on one connection and prints p50/p95/p99/max; ``--detail`` also times each
   statement of the document alone.

``--keep`` leaves the database for later runs; ``--db NAME`` measures an existing one
(no load, no check). Usage::

    .venv/bin/python -m bench.kpi_query [--events 1000000] [--players 20000] [--reps 200]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ccweb import events as ev
from ccweb.analytics import clickhouse, ingest, kpis
from ccweb.analytics.migrate import migrate
from ccweb.config import get_settings, set_settings

SERVER_URL = os.environ.get("CLICKHOUSE_URL") or "clickhouse://127.0.0.1:9000/default"
BATCH = 5000  # entries per INSERT, the analytics group's batch
PRICES = [(100, 40), (500, 30), (1000, 15), (5000, 10), (20000, 5)]


def with_database(url: str, name: str) -> str:
    base, _, _ = url.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name


class Expected:
    """The KPI inputs computed while generating (what ClickHouse must answer)."""

    def __init__(self) -> None:
        self.active: dict[date, set[int]] = defaultdict(set)
        self.attempts: dict[date, int] = defaultdict(int)
        self.ok: dict[date, int] = defaultdict(int)
        self.spent: dict[date, int] = defaultdict(int)
        self.claims: dict[date, int] = defaultdict(int)
        self.claimers: dict[date, set[int]] = defaultdict(set)
        self.progressed: dict[date, set[int]] = defaultdict(set)
        self.spend: dict[tuple[date, int], int] = defaultdict(int)

    def document(self, start: date, end: date) -> dict[str, Any]:
        r = kpis._ratio  # the same rounding as the endpoint
        days = []
        d = start
        while d <= end:
            dau = len(self.active[d])
            days.append(
                {
                    "date": d.isoformat(),
                    "dau": dau,
                    "arpdau": r(self.spent[d], dau),
                    "event_claims": self.claims[d],
                    "claim_conversion": r(len(self.claimers[d]), len(self.progressed[d])),
                    "purchases": self.ok[d],
                    "purchase_success_rate": r(self.ok[d], self.attempts[d]),
                }
            )
            d += timedelta(days=1)
        window = end - timedelta(days=kpis.WHALE_WINDOW_DAYS - 1)
        per_user: dict[int, int] = defaultdict(int)
        for (d, uid), gold in self.spend.items():
            if window <= d <= end:
                per_user[uid] += gold
        whales = sorted(u for u, g in per_user.items() if g >= kpis.WHALE_THRESHOLD_GOLD)
        return {"from": start.isoformat(), "to": end.isoformat(), "days": days, "whales": whales}


def generate(
    n_events: int, n_players: int, first: date, n_days: int, seed: int
) -> tuple[list[dict[str, Any]], Expected]:
    rnd = random.Random(seed)
    exp = Expected()
    p_active = [rnd.uniform(0.6, 1.0) for _ in range(n_players + 1)]
    heavy = {u for u in range(1, n_players + 1) if rnd.random() < 0.02}
    envs: list[dict[str, Any]] = []
    per_day = n_events // n_days
    seq = 0

    def env(kind: str, uid: int, payload: dict[str, Any], ts: datetime) -> dict[str, Any]:
        e = ev.make_envelope(kind, uid, payload)
        e["ts"] = ev.iso(ts)
        envs.append(e)
        return e

    for k in range(n_days):
        day = first + timedelta(days=k)
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        actives = [u for u in range(1, n_players + 1) if rnd.random() < p_active[u]]
        owners = actives + [rnd.choice(actives) for _ in range(max(0, per_day - len(actives)))]
        made = 0
        for uid in owners:
            if made >= per_day:
                break
            seq += 1
            ts = midnight + timedelta(
                seconds=rnd.randrange(86400), milliseconds=rnd.randrange(1000)
            )
            x = rnd.random()
            buy_p = 0.20 if uid in heavy else 0.03
            if x < buy_p:
                exp.attempts[day] += 1
                exp.active[day].add(uid)
                if rnd.random() < 0.25:
                    refusal = {"status": "failed", "reason": "INSUFFICIENT_GOLD", "product_id": 1}
                    env(ev.SHOP_PURCHASE, uid, refusal, ts)
                else:
                    price = rnd.choices([p for p, _ in PRICES], [w for _, w in PRICES])[0]
                    sale = {"tx_id": seq, "status": "success", "product_id": 1,
                            "quantity": 1, "price_gold": price, "gold_amount": 0,
                            "gold_delta": -price}  # fmt: skip
                    env(ev.SHOP_PURCHASE, uid, sale, ts)
                    exp.ok[day] += 1
                    exp.spent[day] += price
                    exp.spend[(day, uid)] += price
                made += 1
            elif x < buy_p + 0.05:
                items = [
                    {"event_id": e, "status": rnd.choice(["active", "claimable"]),
                     "progress_version": seq, "progress": []}
                    for e in rnd.sample(range(1, 6), rnd.choice([1, 2]))
                ]  # fmt: skip
                env(ev.EVENT_PROGRESS, uid, {"items": items}, ts)
                exp.progressed[day].add(uid)
                made += 1
            elif x < buy_p + 0.07:
                env(ev.MISSION_PROGRESS, uid,
                    {"items": [{"mission_id": rnd.randrange(1, 20), "status": "active",
                                "progress_version": seq}]}, ts)  # fmt: skip
                made += 1
            elif x < buy_p + 0.09:
                eid = rnd.randrange(1, 6)
                p = {"event_id": eid, "source_type": "event", "source_id": eid,
                     "reward_items": [{"type": "gold", "amount": 100}],
                     "ledger_key": f"event:{eid}:{uid}:{seq}"}  # fmt: skip
                env(ev.REWARD_GRANTED, uid, {**p, "gold_balance": 5000}, ts)
                env(ev.EVENT_CLAIM, uid, p, ts)
                exp.claims[day] += 1
                exp.claimers[day].add(uid)
                exp.active[day].add(uid)
                made += 2
            elif x < buy_p + 0.14:
                env(ev.AUTH_LOGIN, uid, {"admin": False}, ts)
                exp.active[day].add(uid)
                made += 1
            else:
                bet = rnd.choice([10, 20, 50, 100])
                payout = rnd.choice([0, 0, bet, 2 * bet])
                env(ev.GAME_ROUND, uid,
                    {"round_id": seq, "game_type": rnd.choice(["slot", "rps", "roulette"]),
                     "bet": bet, "payout": payout, "gold_delta": payout - bet,
                     "gold_balance": 1000}, ts)  # fmt: skip
                exp.active[day].add(uid)
                made += 1
    return envs, exp


def settle(url: str, limit_s: float) -> float:
    """Wait until no merge has run in this database for 2 s; returns the seconds waited."""
    c = clickhouse.new_client(url)
    started = quiet = time.monotonic()
    try:
        while time.monotonic() - started < limit_s:
            busy = c.execute(
                "SELECT count() FROM system.merges WHERE database = currentDatabase()"
            )[0][0]
            now = time.monotonic()
            if busy:
                quiet = now
            elif now - quiet >= 2:
                break
            time.sleep(0.2)
    finally:
        c.disconnect()
    return time.monotonic() - started


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))] * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--players", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--replay", type=float, default=0.0, help="fraction of batches sent twice")
    ap.add_argument("--settle", type=float, default=120.0, help="max seconds to wait for merges")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--keep", action="store_true", help="keep the database")
    ap.add_argument("--db", help="measure this existing database (no load, no check)")
    ap.add_argument("--detail", action="store_true", help="also time each statement alone")
    args = ap.parse_args(argv)

    first = date(2024, 1, 1)
    end = first + timedelta(days=args.days - 1)
    start = end - timedelta(days=29)
    name = args.db or f"cc_bench_kpi_{secrets.token_hex(4)}"
    url = with_database(SERVER_URL, name)
    set_settings(replace(get_settings(), clickhouse_url=url))
    from worker.handlers import analytics  # after the settings: its pool reads them

    exp = None
    try:
        if not args.db:
            migrate(url)
            t = time.perf_counter()
            envs, exp = generate(args.events, args.players, first, args.days, args.seed)
            print(f"generated {len(envs)} envelopes in {time.perf_counter() - t:.1f} s")
            rnd = random.Random(args.seed + 1)
            t = time.perf_counter()
            n_rows = 0
            for i in range(0, len(envs), BATCH):
                rows = [r for e in envs[i : i + BATCH] for r in ingest.rows_of(e)]
                analytics.insert(rows)
                n_rows += len(rows)
                if args.replay and rnd.random() < args.replay:
                    analytics.insert(rows)
                    n_rows += len(rows)
            took = time.perf_counter() - t
            print(
                f"ingested {n_rows} rows in {took:.1f} s ({n_rows / took:,.0f} rows/s,"
                f" rows_of + INSERT, batches of {BATCH})"
            )
            print(f"merges settled after {settle(url, args.settle):.1f} s")
        c = clickhouse.new_client(url)
        try:
            out = kpis.kpis(c, start, end)
            if exp is not None:
                want = exp.document(start, end)
                same = out == want
                print(
                    f"KPIs equal hand-computed values: {'OK' if same else 'MISMATCH'}"
                    f" (DAU {out['days'][0]['dau']}..., {len(out['whales'])} whales)"
                )
                if not same:
                    for g, w in zip(out["days"], want["days"], strict=True):
                        if g != w:
                            print(f"  got  {g}\n  want {w}")
                            break
                    if out["whales"] != want["whales"]:
                        print(f"  whales got {len(out['whales'])} want {len(want['whales'])}")
            for _ in range(5):
                kpis.kpis(c, start, end)
            timings = []
            for _ in range(args.reps):
                t = time.perf_counter()
                kpis.kpis(c, start, end)
                timings.append(time.perf_counter() - t)
            print(
                f"KPI {start}..{end} over {args.reps} runs: p50 {pct(timings, 0.5):.1f} ms,"
                f" p95 {pct(timings, 0.95):.1f} ms, p99 {pct(timings, 0.99):.1f} ms,"
                f" max {max(timings) * 1000:.1f} ms, mean {statistics.mean(timings) * 1000:.1f} ms"
            )
            if args.detail:
                for label, fn in kpis.statements(c, start, end):
                    ts = []
                    for _ in range(max(50, args.reps // 4)):
                        t = time.perf_counter()
                        fn()
                        ts.append(time.perf_counter() - t)
                    print(f"  {label}: p50 {pct(ts, 0.5):.1f} ms, p95 {pct(ts, 0.95):.1f} ms")
        finally:
            c.disconnect()
    finally:
        clickhouse.reset_pools()
        if args.keep or args.db:
            print(f"database kept: {url}")
        else:
            c = clickhouse.new_client(SERVER_URL)
            c.execute(f"DROP DATABASE IF EXISTS {name}")
            c.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
