"""KPIs from the materialized views on the real ClickHouse server: equal to values
computed by hand on constructed data, unchanged by a replayed batch (also after merges),
whales at the 50 000 boundary and the 30-day window's edges, and the admin endpoint's
auth, validation and 503s."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from ccweb import events as ev
from ccweb.analytics import clickhouse
from ccweb.analytics.kpis import kpis
from ccweb.analytics.migrate import load
from ccweb.analytics.routes import bp as analytics_bp
from ccweb.config import Settings, set_settings
from tests.factories import auth_headers, create_user
from tests.pipeline.conftest import ch_client
from tests.pipeline.test_ingester import analytics_db, entry, envelope
from worker.handlers import analytics

__all__ = ["analytics_db"]  # fixture, imported

D1, D2, D3, D4 = (date(2024, 5, d) for d in (1, 2, 3, 4))


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def buy(uid: int, day: date, price: int, tx: int, hour: int = 12) -> dict[str, Any]:
    return envelope(
        ev.SHOP_PURCHASE,
        uid,
        {"tx_id": tx, "status": "success", "product_id": 1, "quantity": 1,
         "price_gold": price, "gold_amount": 0, "gold_delta": -price},
        at(day, hour),
    )  # fmt: skip


def refused(uid: int, day: date, price: int = 1000) -> dict[str, Any]:
    # a refusal's payload has no price; one is put here to prove it is not counted
    return envelope(
        ev.SHOP_PURCHASE,
        uid,
        {"status": "failed", "reason": "INSUFFICIENT_GOLD", "product_id": 1, "price_gold": price},
        at(day, 13),
    )


def progress(uid: int, day: date, *event_ids: int, status: str = "active") -> dict[str, Any]:
    items = [
        {"event_id": e, "status": status, "progress_version": 1, "progress": []} for e in event_ids
    ]
    return envelope(ev.EVENT_PROGRESS, uid, {"items": items}, at(day, 14))


def claim(uid: int, day: date, event_id: int) -> list[dict[str, Any]]:
    p = {
        "event_id": event_id,
        "source_type": "event",
        "source_id": event_id,
        "reward_items": [{"type": "gold", "amount": 100}],
        "ledger_key": f"event:{event_id}:{uid}",
    }
    return [
        envelope(ev.REWARD_GRANTED, uid, {**p, "gold_balance": 5000}, at(day, 15)),
        envelope(ev.EVENT_CLAIM, uid, p, at(day, 15)),
    ]


def constructed() -> list[dict[str, Any]]:
    """Four players over four days (D3 empty). Comments give what each line adds."""
    return [
        # D1: 101 and 102 active; 103 only derived events, 104 only a settlement
        envelope(ev.AUTH_LOGIN, 101, {"admin": False}, at(D1, 0, 0)),  # first second of D1
        envelope(
            ev.GAME_ROUND,
            101,
            {"round_id": 1, "game_type": "slot", "bet": 10, "payout": 0, "gold_delta": -10},
            at(D1),
        ),
        buy(101, D1, 1000, 1),
        refused(101, D1),
        progress(101, D1, 55),
        *claim(101, D1, 55),
        envelope(
            ev.GAME_ROUND,
            102,
            {"round_id": 2, "game_type": "rps", "bet": 5, "payout": 10, "gold_delta": 5},
            at(D1),
        ),
        buy(102, D1, 3000, 2),
        progress(102, D1, 55),
        progress(103, D1, 55, 56),
        envelope(ev.ACHIEVEMENT_UNLOCKED, 103, {"achievement_id": 1}, at(D1)),
        envelope(
            ev.SHOP_SETTLEMENT, 104, {"tx_id": 9, "status": "settled", "gold_delta": 0}, at(D1)
        ),
        # D2: 101 claims two events it progressed before; 102 is refused twice
        *claim(101, D2, 56),
        *claim(101, D2, 57),
        refused(102, D2),
        refused(102, D2),
        envelope(
            ev.MISSION_PROGRESS,
            103,
            {"items": [{"mission_id": 3, "status": "active", "progress_version": 2}]},
            at(D2),
        ),
        # D4: 104 buys twice; 103 progresses on two events and claims one
        envelope(ev.AUTH_LOGIN, 104, {}, at(D4, 23, 59)),
        buy(104, D4, 500, 3),
        buy(104, D4, 1500, 4),
        progress(103, D4, 55, 56, status="claimable"),
        *claim(103, D4, 56),
        # the day after D4 (outside the range asked for)
        buy(101, D4 + timedelta(days=1), 7777, 5, hour=0),
    ]


EXPECTED_DAYS = [
    # dau 101,102; spent 4000/2; 1 claim; claimers {101} / progressed {101,102,103};
    # 2 of 3 purchases succeeded
    {"date": "2024-05-01", "dau": 2, "arpdau": 2000.0, "event_claims": 1,
     "claim_conversion": 0.3333, "purchases": 2, "purchase_success_rate": 0.6667},
    # dau 101,102 (103's mission progress is derived); nobody progressed → 0
    {"date": "2024-05-02", "dau": 2, "arpdau": 0.0, "event_claims": 2,
     "claim_conversion": 0.0, "purchases": 0, "purchase_success_rate": 0.0},
    {"date": "2024-05-03", "dau": 0, "arpdau": 0.0, "event_claims": 0,
     "claim_conversion": 0.0, "purchases": 0, "purchase_success_rate": 0.0},
    # dau 104, 103 (its claim); spent 2000/2; claimers {103} / progressed {103}
    {"date": "2024-05-04", "dau": 2, "arpdau": 1000.0, "event_claims": 1,
     "claim_conversion": 1.0, "purchases": 2, "purchase_success_rate": 1.0},
]  # fmt: skip


def ask(url: str, start: date, end: date) -> dict[str, Any]:
    c = ch_client(url)
    try:
        return kpis(c, start, end)
    finally:
        c.disconnect()


def ingest(envs: list[dict[str, Any]], batch: int = 5000) -> list[Any]:
    entries = [entry(e) for e in envs]
    for i in range(0, len(entries), batch):
        analytics.handle(entries[i : i + batch])
    return entries


def test_kpis_equal_hand_computed_values(analytics_db: str) -> None:
    ingest(constructed())
    got = ask(analytics_db, D1, D4)
    assert got == {"from": "2024-05-01", "to": "2024-05-04", "days": EXPECTED_DAYS, "whales": []}


# Rows of the KPI key views (migration 0006) for constructed(), one per fact, once merged.
KEY_VIEW_ROWS = {
    # (day, player) with activity of their own: D1 101, 102; D2 101, 102; D4 103, 104;
    # D4+1 101
    "mv_active_players": 7,
    # purchase attempts: D1 101 ok + refused, 102 ok; D2 102 refused twice; D4 104 ok
    # twice; D4+1 101 ok
    "mv_purchases": 8,
    # claims: D1 101/55; D2 101/56, 101/57; D4 103/56 — plus (day, player) with event
    # progress: D1 101, 102, 103; D4 103
    "mv_event_players": 8,
}


def inner_table(c: Any, view: str) -> str:
    """The table behind a materialized view: ``.inner.<view>`` (18.16, Ordinary
    databases) or ``.inner_id.<uuid>`` (Atomic databases of current servers)."""
    names = {
        r[0] for r in c.execute("SELECT name FROM system.tables WHERE database = currentDatabase()")
    }
    if f".inner.{view}" in names:
        return f"`.inner.{view}`"
    uuid = c.execute(
        "SELECT toString(uuid) FROM system.tables WHERE database = currentDatabase()"
        " AND name = %(v)s",
        {"v": view},
    )[0][0]
    return f"`.inner_id.{uuid}`"


def key_rows(c: Any, final: bool = False) -> dict[str, int]:
    return {
        v: c.execute(f"SELECT count() FROM {v}{' FINAL' if final else ''}")[0][0]
        for v in KEY_VIEW_ROWS
    }


def test_a_replayed_batch_changes_no_kpi(analytics_db: str) -> None:
    """The same entries handled again — whole, and re-split into other batches, as a
    reclaim after a crash would — while the key views cannot merge (their copies are
    visible to the query), then merged: every number stays."""
    envs = constructed()
    entries = ingest(envs)
    first = ask(analytics_db, D1, D4)
    c = ch_client(analytics_db)
    try:
        for view in KEY_VIEW_ROWS:
            c.execute(f"SYSTEM STOP MERGES {inner_table(c, view)}")
        analytics.handle(entries)
        for i in range(0, len(entries), 3):
            analytics.handle(entries[::-1][i : i + 3])
        copies = key_rows(c)
        assert all(copies[v] >= 3 * n for v, n in KEY_VIEW_ROWS.items()), copies
        assert key_rows(c, final=True) == KEY_VIEW_ROWS
        # what kpis' fast DAU path rests on: copies sit in different parts, never in one
        assert c.execute(
            "SELECT count() FROM (SELECT _part, event_date, user_id, count() AS n"
            " FROM mv_active_players GROUP BY _part, event_date, user_id HAVING n > 1)"
        ) == [(0,)]
        assert ask(analytics_db, D1, D4) == first

        for view in KEY_VIEW_ROWS:
            c.execute(f"SYSTEM START MERGES {inner_table(c, view)}")
        for table in ("events_raw", "mv_user_daily", "mv_event_completion", *KEY_VIEW_ROWS):
            c.execute(f"OPTIMIZE TABLE {table} FINAL")
        assert c.execute("SELECT count() FROM events_raw")[0][0] == sum(
            len(e["payload"]["items"]) if e["event_type"] == ev.EVENT_PROGRESS else 1 for e in envs
        )
        assert key_rows(c) == KEY_VIEW_ROWS  # merged: one row per fact
    finally:
        c.disconnect()
    assert ask(analytics_db, D1, D4) == first
    assert first["days"] == EXPECTED_DAYS


def test_the_key_views_backfill_events_ingested_before_them(analytics_db: str) -> None:
    """Migration 0006 fills its views from events_raw (a server that had events before
    the views existed), and running its statements again — a migration that died half
    way and is re-run — counts nothing twice."""
    ingest(constructed())
    c = ch_client(analytics_db)
    try:
        for view in KEY_VIEW_ROWS:
            c.execute(f"TRUNCATE TABLE {inner_table(c, view)}")
        assert ask(analytics_db, D1, D4)["days"] != EXPECTED_DAYS
        (m0006,) = [m for m in load() if m.version == 6]
        for _ in range(2):
            for statement in m0006.statements():
                c.execute(statement)
            assert key_rows(c, final=True) == KEY_VIEW_ROWS
            assert ask(analytics_db, D1, D4)["days"] == EXPECTED_DAYS
    finally:
        c.disconnect()


def test_whales_threshold_and_window(analytics_db: str) -> None:
    to = date(2024, 7, 31)
    first_day, before = to - timedelta(days=29), to - timedelta(days=30)
    mid = date(2024, 7, 15)
    envs = [
        buy(201, first_day, 40_000, 1), buy(201, to, 9_999, 2),  # 49 999: not a whale
        buy(202, first_day, 25_000, 3), buy(202, to, 25_000, 4),  # 50 000 on the window's edges
        buy(203, before, 25_000, 5), buy(203, to, 25_000, 6),  # 25 000 of it a day too early
        buy(204, mid, 49_999, 7), refused(204, mid, 5_000),  # refusals count nothing
        buy(205, mid, 60_000, 8),
        buy(206, mid, 30_000, 9),  # replayed below: 60 000 if a replay counted
    ]  # fmt: skip
    entries = ingest(envs)
    analytics.handle(entries[-1:])
    analytics.handle(entries)

    assert ask(analytics_db, to, to)["whales"] == [202, 205]
    # the window ends at `to`, whatever `from` is
    assert ask(analytics_db, date(2024, 7, 1), to)["whales"] == [202, 205]
    assert ask(analytics_db, to - timedelta(days=1), to - timedelta(days=1))["whales"] == [205]


def test_kpi_query_time_over_thirty_days(analytics_db: str) -> None:
    """A smoke number, not the benchmark: 30 days × 300 players × 20 events."""
    start = date(2024, 1, 1)
    envs = []
    tx = 0
    for d in range(30):
        day = start + timedelta(days=d)
        for uid in range(1, 301):
            for k in range(18):
                rnd = {"round_id": d * 10**6 + uid * 100 + k, "bet": 10, "payout": 0}
                envs.append(envelope(ev.GAME_ROUND, uid, rnd, at(day, k % 24)))
            tx += 1
            envs.append(buy(uid, day, 100 + uid, tx))
            envs.append(progress(uid, day, 1 + uid % 5))
    ingest(envs)
    end = start + timedelta(days=29)
    timings = []
    c = ch_client(analytics_db)
    try:
        for _ in range(20):
            t = time.perf_counter()
            out = kpis(c, start, end)
            timings.append(time.perf_counter() - t)
    finally:
        c.disconnect()
    assert [d["dau"] for d in out["days"]] == [300] * 30
    assert out["days"][0]["purchases"] == 300
    assert out["whales"] == [uid for uid in range(1, 301) if (100 + uid) * 30 >= 50_000]
    timings.sort()
    print(
        f"KPI 30 days, {len(envs)} events:"
        f" p50 {timings[9] * 1000:.1f} ms, p95 {timings[18] * 1000:.1f} ms"
    )
    assert timings[18] < 1.0


# ---------------------------------------------------------------- the endpoint


@pytest.fixture(scope="module")
def kpi_app(settings: Settings) -> Flask:
    """The application with the analytics blueprint (registered here until create_app
    registers it)."""
    from ccweb import create_app

    app = create_app(settings)
    if "analytics_admin" not in app.blueprints:
        app.register_blueprint(analytics_bp)
    return app


@pytest.fixture
def web(kpi_app: Flask) -> Any:
    return kpi_app.test_client()


@pytest.fixture
def admin(web: Any) -> dict[str, str]:
    return auth_headers(web, create_user(is_admin=True), admin=True)


URL = "/api/admin/analytics/kpis"


def test_endpoint_answers_admins_from_clickhouse(
    analytics_db: str, web: Any, admin: dict[str, str]
) -> None:
    ingest(constructed())
    resp = web.get(f"{URL}?from=2024-05-01&to=2024-05-04", headers=admin)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {"from": "2024-05-01", "to": "2024-05-04", "days": EXPECTED_DAYS,
                               "whales": []}  # fmt: skip


def test_endpoint_refuses_non_admins(analytics_db: str, web: Any) -> None:
    assert web.get(f"{URL}?from=2024-05-01&to=2024-05-04").status_code == 401
    player = auth_headers(web, create_user())
    resp = web.get(f"{URL}?from=2024-05-01&to=2024-05-04", headers=player)
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    "qs",
    [
        "",
        "from=2024-05-01",
        "to=2024-05-01",
        "from=2024-5-1&to=2024-05-04",
        "from=1714521600&to=2024-05-04",
        "from=2024-05-01T00:00:00&to=2024-05-04",
        "from=2024-02-30&to=2024-03-04",
        "from=2024-05-04&to=2024-05-01",
        "from=2023-01-01&to=2024-02-05",  # 401 days
    ],
)
def test_endpoint_rejects_bad_ranges(
    analytics_db: str, web: Any, admin: dict[str, str], qs: str
) -> None:
    resp = web.get(f"{URL}?{qs}", headers=admin)
    assert resp.status_code == 400, qs
    assert resp.get_json()["error"]["code"] == "VALIDATION_ERROR"


def test_endpoint_accepts_exactly_400_days(
    analytics_db: str, web: Any, admin: dict[str, str]
) -> None:
    resp = web.get(f"{URL}?from=2023-01-01&to=2024-02-04", headers=admin)
    assert resp.status_code == 200 and len(resp.get_json()["days"]) == 400


@pytest.fixture
def ch_url(settings: Settings) -> Iterator[Any]:
    def use(url: str) -> None:
        clickhouse.reset_pools()
        set_settings(replace(settings, clickhouse_url=url))

    yield use
    clickhouse.reset_pools()
    set_settings(settings)


def test_endpoint_is_503_when_clickhouse_is_disabled_or_down(
    web: Any, admin: dict[str, str], ch_url: Any
) -> None:
    ch_url("")
    resp = web.get(f"{URL}?from=2024-05-01&to=2024-05-04", headers=admin)
    assert resp.status_code == 503
    assert resp.get_json()["error"]["code"] == "SERVICE_UNAVAILABLE"

    ch_url("clickhouse://127.0.0.1:1/nothing?connect_timeout=1")  # nothing listens there
    started = time.monotonic()
    resp = web.get(f"{URL}?from=2024-05-01&to=2024-05-04", headers=admin)
    assert resp.status_code == 503 and time.monotonic() - started < 5
    body = resp.get_json()
    assert body["error"]["code"] == "SERVICE_UNAVAILABLE" and set(body["error"]) >= {
        "message",
        "details",
    }
