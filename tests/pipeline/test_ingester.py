"""The ``analytics`` ingester against the real ClickHouse server (18.16 in dev and CI):
every event type lands in the right typed columns, a malformed envelope fails alone,
big batches are split under 1 MB, a stopped or frozen ClickHouse holds the batch (no
ack, no dead letter) and everything arrives once after it returns, and an ingester that
dies between INSERT and ack duplicates nothing.

Helpers here (``analytics_db``, ``envelope``, ``entry``) are imported by
``test_kpis.py``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from prometheus_client import REGISTRY

from ccweb import events as ev
from ccweb.analytics import clickhouse, ingest
from ccweb.analytics.migrate import migrate
from ccweb.config import Settings, set_settings
from tests.pipeline.conftest import ch_client, with_database
from tests.processes import wait_for
from tests.worker._support import emit_event
from worker.dlq import dlq_key
from worker.entries import Entry
from worker.handlers import analytics
from worker.outage import SinkUnavailable
from worker.runner import GroupConsumer, StoreUnavailable

# ---------------------------------------------------------------- shared helpers


@pytest.fixture
def analytics_db(clickhouse_url: str, settings: Settings) -> Iterator[str]:
    """A migrated database of its own for one test (``<run db>_<hex>``), set as this
    process's CLICKHOUSE_URL; dropped afterwards. KPIs are totals over all players, so
    each test needs tables nobody else writes to."""
    url = with_database(
        clickhouse_url, f"{clickhouse_url.rsplit('/', 1)[1]}_{secrets.token_hex(3)}"
    )
    migrate(url)
    set_settings(replace(settings, clickhouse_url=url))
    yield url
    clickhouse.reset_pools()
    set_settings(settings)
    admin = ch_client(url)
    admin.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]}")
    admin.disconnect()


def envelope(
    event_type: str, user_id: int | None, payload: dict[str, Any], ts: datetime | str
) -> dict[str, Any]:
    env = ev.make_envelope(event_type, user_id, payload)
    env["ts"] = ts if isinstance(ts, str) else ev.iso(ts)
    return env


_seq = iter(range(1, 10**9))


def entry(env: dict[str, Any] | str, stream: str = "test:events:{0}") -> Entry:
    """A stream entry carrying ``env`` as the publisher writes it."""
    data = env if isinstance(env, str) else json.dumps(env)
    fields = {"data": data}
    if isinstance(env, dict):
        fields.update(event_id=str(env.get("event_id")), event_type=str(env.get("event_type")))
    return Entry(stream, f"{int(time.time() * 1000)}-{next(_seq)}", fields)


def raw_rows(url: str, where: str = "1") -> list[dict[str, Any]]:
    c = ch_client(url)
    try:
        rows, cols = c.execute(
            f"SELECT * FROM events_raw FINAL WHERE {where} ORDER BY ts, ts_ms, entity_id",
            with_column_types=True,
        )
    finally:
        c.disconnect()
    names = [n for n, _ in cols]
    return [dict(zip(names, r, strict=True)) for r in rows]


def scalar(url: str, sql: str) -> Any:
    c = ch_client(url)
    try:
        return c.execute(sql)[0][0]
    finally:
        c.disconnect()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


T0 = datetime(2024, 3, 5, 10, 15, 30, 123000, tzinfo=UTC)

# ---------------------------------------------------------------- mapping


def _typed(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        row["event_type"],
        row["user_id"],
        row["entity_id"],
        row["delta_gold"],
        row["amount_gold"],
        row["balance_after"],
        row["status"],
        row["game_type"],
        row["version"],
    )


def test_every_event_type_lands_in_its_typed_columns(analytics_db: str) -> None:
    """Payloads shaped as the producers write them (ccweb/*/service.py); each row's typed
    columns as documented in ccweb.analytics.ingest."""
    reward = [{"type": "gold", "amount": 300}, {"type": "xp", "amount": 5}]
    cases: list[tuple[dict[str, Any], list[tuple[Any, ...]]]] = [
        (
            envelope(
                ev.AUTH_SIGNUP, 7, {"site_id": "s", "nickname": "n", "invite_code": "5858"}, T0
            ),
            [(ev.AUTH_SIGNUP, 7, 0, 0, 0, 0, "", "", 0)],
        ),
        (
            envelope(ev.AUTH_LOGIN, 7, {"admin": False}, T0),
            [(ev.AUTH_LOGIN, 7, 0, 0, 0, 0, "", "", 0)],
        ),
        (
            envelope(
                ev.STREAK_CLAIM,
                7,
                {
                    "count": 2,
                    "day_index": 2,
                    "reward": {"gold": 150, "xp": 10},
                    "grace_used": False,
                    "gold_balance": 1150,
                    "experience_points": 10,
                    "level": 1,
                },
                T0,
            ),
            [(ev.STREAK_CLAIM, 7, 0, 150, 0, 1150, "", "", 0)],
        ),
        (
            envelope(
                ev.GAME_ROUND,
                7,
                {
                    "round_id": 901,
                    "game_type": "slot",
                    "bet": 100,
                    "payout": 250,
                    "gold_delta": 150,
                    "outcome": "win",
                    "session_id": None,
                    "gold_balance": 1300,
                },
                T0,
            ),
            [(ev.GAME_ROUND, 7, 901, 150, 100, 1300, "win", "slot", 0)],
        ),
        (
            envelope(ev.GAME_SESSION_START, 7, {"session_id": 44, "game_type": "rps"}, T0),
            [(ev.GAME_SESSION_START, 7, 44, 0, 0, 0, "", "rps", 0)],
        ),
        (
            envelope(ev.GAME_SESSION_END, 7, {"session_id": 44, "game_type": "rps"}, T0),
            [(ev.GAME_SESSION_END, 7, 44, 0, 0, 0, "", "rps", 0)],
        ),
        (
            envelope(ev.EVENT_PARTICIPATE, 7, {"event_id": 55}, T0),
            [(ev.EVENT_PARTICIPATE, 7, 55, 0, 0, 0, "", "", 0)],
        ),
        (
            envelope(
                ev.EVENT_PROGRESS,
                7,
                {
                    "items": [
                        {
                            "event_id": 55,
                            "status": "active",
                            "progress_version": 3,
                            "progress": [{"type": "plays", "current": 3, "target": 5}],
                        },
                        {
                            "event_id": 56,
                            "status": "claimable",
                            "progress_version": 9,
                            "progress": [{"type": "wins", "current": 1, "target": 1}],
                        },
                    ]
                },
                T0,
            ),
            [
                (ev.EVENT_PROGRESS, 7, 55, 0, 0, 0, "active", "", 3),
                (ev.EVENT_PROGRESS, 7, 56, 0, 0, 0, "claimable", "", 9),
            ],
        ),
        (
            envelope(
                ev.EVENT_CLAIM,
                7,
                {
                    "event_id": 56,
                    "source_type": "event",
                    "source_id": 56,
                    "reward_items": reward,
                    "ledger_key": "event:56:7",
                },
                T0,
            ),
            [(ev.EVENT_CLAIM, 7, 56, 0, 0, 0, "claimed", "", 0)],
        ),
        (
            envelope(
                ev.MISSION_PROGRESS,
                7,
                {
                    "items": [
                        {
                            "mission_id": 12,
                            "status": "active",
                            "progress_version": 4,
                            "period_start": "2024-03-05",
                            "progress": [{"type": "plays", "current": 1, "target": 3}],
                        }
                    ]
                },
                T0,
            ),
            [(ev.MISSION_PROGRESS, 7, 12, 0, 0, 0, "active", "", 4)],
        ),
        (
            envelope(
                ev.MISSION_CLAIM,
                7,
                {
                    "mission_id": 12,
                    "source_type": "mission",
                    "source_id": 12,
                    "reward_items": reward,
                    "ledger_key": "mission:3:7",
                },
                T0,
            ),
            [(ev.MISSION_CLAIM, 7, 12, 0, 0, 0, "claimed", "", 0)],
        ),
        (
            envelope(
                ev.REWARD_GRANTED,
                7,
                {
                    "event_id": 56,
                    "source_type": "event",
                    "source_id": 56,
                    "reward_items": reward,
                    "ledger_key": "event:56:7",
                    "gold_balance": 1600,
                },
                T0,
            ),
            [(ev.REWARD_GRANTED, 7, 56, 300, 0, 1600, "", "", 0)],
        ),
        (
            envelope(
                ev.SHOP_PURCHASE,
                7,
                {
                    "tx_id": 77,
                    "status": "success",
                    "product_id": 3,
                    "sku": "pk",
                    "category": "package",
                    "quantity": 2,
                    "price_gold": 2000,
                    "points_price": 0,
                    "gold_amount": 500,
                    "gold_delta": -1500,
                    "items": [],
                    "settlement_status": None,
                    "gold_balance": 100,
                },
                T0,
            ),
            [(ev.SHOP_PURCHASE, 7, 77, -1500, 2000, 100, "success", "", 0)],
        ),
        (
            envelope(
                ev.SHOP_PURCHASE,
                7,
                {
                    "status": "failed",
                    "reason": "INSUFFICIENT_GOLD",
                    "product_id": 3,
                    "sku": "pk",
                    "quantity": 1,
                },
                T0,
            ),
            [(ev.SHOP_PURCHASE, 7, 0, 0, 0, 0, "failed", "", 0)],
        ),
        (
            envelope(
                ev.SHOP_SETTLEMENT,
                7,
                {
                    "tx_id": 78,
                    "status": "voided",
                    "previous_status": "pending",
                    "gold_delta": -400,
                    "gold_balance": 0,
                    "unrecovered_gold": 100,
                },
                T0,
            ),
            [(ev.SHOP_SETTLEMENT, 7, 78, -400, 0, 0, "voided", "", 0)],
        ),
        (
            envelope(
                ev.ACHIEVEMENT_UNLOCKED,
                7,
                {"achievement_id": 4, "code": "first_win", "title": "t"},
                T0,
            ),
            [(ev.ACHIEVEMENT_UNLOCKED, 7, 4, 0, 0, 0, "", "", 0)],
        ),
        (
            envelope(
                ev.ADMIN_ADJUST,
                7,
                {
                    "admin_id": 1,
                    "delta": -250,
                    "reason": "fix",
                    "balance_after": 750,
                    "entry_id": 991,
                },
                T0,
            ),
            [(ev.ADMIN_ADJUST, 7, 991, -250, 0, 750, "", "", 0)],
        ),
        (
            envelope(
                ev.USER_LEVEL_UP,
                7,
                {
                    "source": "game.round",
                    "round_id": 901,
                    "level": 3,
                    "previous_level": 2,
                    "experience_points": 300,
                },
                T0,
            ),
            [(ev.USER_LEVEL_UP, 7, 0, 0, 0, 0, "", "", 0)],
        ),
        (
            envelope(
                ev.USER_ACTION, 7, {"action_id": 31, "action_type": "view", "context": {}}, T0
            ),
            [(ev.USER_ACTION, 7, 31, 0, 0, 0, "", "", 0)],
        ),
        (
            envelope(ev.AUTH_LOGIN, None, {"system": True}, T0),
            [(ev.AUTH_LOGIN, 0, 0, 0, 0, 0, "", "", 0)],
        ),
    ]
    assert {c[0]["event_type"] for c in cases} == ev.EVENT_TYPES  # every type is covered

    analytics.handle([entry(env) for env, _ in cases])

    for env, expected in cases:
        rows = raw_rows(analytics_db, f"event_id = '{env['event_id']}'")
        assert [_typed(r) for r in rows] == expected, env["event_type"]
        for r in rows:
            assert r["ts"] == T0.replace(microsecond=0) and r["ts_ms"] == 123
            assert r["event_date"] == T0.date()
            assert r["dedupe_key"] == env["dedupe_key"] and r["trace_id"] == env["trace_id"]
            assert r["schema_version"] == 1 and r["source_service"] == "ccweb"
            if env["event_type"] in (ev.EVENT_PROGRESS, ev.MISSION_PROGRESS):  # row per item
                assert json.loads(r["payload"])["items"][0] in env["payload"]["items"]
                assert len(json.loads(r["payload"])["items"]) == 1
            else:
                assert json.loads(r["payload"]) == env["payload"]
    # 18.16 fallback for fields nobody extracted: visitParam* on the JSON text
    assert (
        scalar(
            analytics_db,
            "SELECT visitParamExtractInt(payload, 'product_id') FROM events_raw"
            " WHERE event_type = 'shop.purchase' AND status = 'success'",
        )
        == 3
    )


@pytest.mark.parametrize(
    "data",
    [
        "{not json",
        json.dumps(
            {"event_type": ev.GAME_ROUND, "user_id": 1, "ts": "2024-03-05T10:00:00Z", "payload": {}}
        ),
        json.dumps(
            {
                "event_id": "x",
                "event_type": ev.GAME_ROUND,
                "user_id": "1",
                "ts": "2024-03-05T10:00:00Z",
                "payload": {},
            }
        ),
        json.dumps(
            {
                "event_id": "x",
                "event_type": ev.GAME_ROUND,
                "user_id": 1,
                "ts": "yesterday",
                "payload": {},
            }
        ),
        json.dumps(
            {
                "event_id": "x",
                "event_type": ev.GAME_ROUND,
                "user_id": 1,
                "ts": "2024-03-05T10:00:00Z",
                "payload": {"round_id": -5},
            }
        ),
        json.dumps(
            {
                "event_id": "x",
                "event_type": ev.GAME_ROUND,
                "user_id": 1,
                "ts": "2024-03-05T10:00:00Z",
                "payload": {"bet": 2**70},
            }
        ),
    ],
    ids=["not-json", "no-event-id", "user-id-text", "bad-ts", "negative-id", "overflow"],
)
def test_a_malformed_envelope_is_a_value_error_and_writes_nothing(
    analytics_db: str, data: str
) -> None:
    with pytest.raises(ValueError):
        analytics.handle([entry(data)])
    assert scalar(analytics_db, "SELECT count() FROM events_raw") == 0


def test_one_malformed_entry_fails_alone_without_one_insert_per_good_entry(
    analytics_db: str, make_consumer: Any, rds: Any, settings: Settings
) -> None:
    """Through the real runner: 20 good entries and one bad in one batch. The good rows
    go in with ONE insert, are acked, and the runner's one-by-one retry does not insert
    them again; the bad entry fails alone and is dead-lettered after the limit."""
    s = replace(settings, clickhouse_url=analytics_db, worker_max_deliveries=1)
    set_settings(s)
    consumer = make_consumer("a1", s)
    good = [
        emit_event(5, ev.GAME_ROUND, round_id=i, bet=10, payout=0, gold_delta=-10)["event_id"]
        for i in range(1, 21)
    ]
    stream = ev.stream_key(ev.partition_of(5))
    rds.xadd(stream, {"event_id": "bad", "event_type": ev.GAME_ROUND, "data": "{oops"})
    inserts = sample("cc_ch_insert_batch_size_count")
    malformed = sample("cc_ch_insert_fail_total", reason="malformed")

    wait_for(lambda: (consumer.run_once(None), consumer.pending() == 0)[1], what="batch handled")

    assert sample("cc_ch_insert_batch_size_count") - inserts == 1
    assert sample("cc_ch_insert_fail_total", reason="malformed") - malformed == 1
    got = scalar(analytics_db, "SELECT groupArray(event_id) FROM events_raw")
    assert sorted(got) == sorted(good)
    dead = rds.xrange(dlq_key(s))
    assert [d[1]["entry_id"] for d in dead] and dead[0][1]["group"] == analytics.GROUP
    assert dead[0][1]["event_id"] == "bad"


def test_batches_are_split_so_no_insert_exceeds_one_megabyte(analytics_db: str) -> None:
    big = "x" * 300_000
    envs = [envelope(ev.USER_ACTION, 9, {"action_id": i, "blob": big}, T0) for i in range(1, 8)]
    rows = [r for e in envs for r in ingest.rows_of(e)]
    sizes = [sum(ingest.row_bytes(r) for r in c) for c in ingest.chunks(rows)]
    assert len(sizes) >= 3 and max(sizes) <= ingest.MAX_INSERT_BYTES
    before = sample("cc_ch_insert_batch_size_count")

    analytics.handle([entry(e) for e in envs])

    assert sample("cc_ch_insert_batch_size_count") - before == len(sizes)
    assert scalar(analytics_db, "SELECT count() FROM events_raw") == 7


# ---------------------------------------------------------------- outages and crashes


@pytest.fixture
def make_consumer(rds: redis.Redis) -> Callable[..., GroupConsumer]:
    """An ``analytics`` GroupConsumer on the real Redis streams (groups ensured)."""

    def make(name: str, s: Settings) -> GroupConsumer:
        consumer = GroupConsumer(rds, s, analytics.GROUP, analytics.handle, name)
        consumer.ensure_groups()
        return consumer

    return make


def test_clickhouse_stopped_holds_the_batch_then_everything_arrives_once(
    local_clickhouse: Any, make_consumer: Any, rds: Any, settings: Settings
) -> None:
    """A private server is stopped: the handler raises SinkUnavailable, the runner holds
    the batch — nothing acked, no failure recorded, nothing dead-lettered — and once the
    server is back each event is in events_raw exactly once."""
    name = f"cc_out_{secrets.token_hex(3)}"
    url = local_clickhouse.create_database(name) + "?connect_timeout=1&send_receive_timeout=3"
    migrate(url)
    s = replace(settings, clickhouse_url=url, worker_max_deliveries=1)
    set_settings(s)
    clickhouse.reset_pools()
    consumer = make_consumer("o1", s)
    sent = [emit_event(11, ev.AUTH_LOGIN, n=i)["event_id"] for i in range(5)]
    unavailable = sample("cc_ch_insert_fail_total", reason="unavailable")
    local_clickhouse.stop()
    try:
        with pytest.raises(StoreUnavailable) as info:
            consumer.run_once(None)
        assert isinstance(info.value.__cause__, SinkUnavailable)
        assert len(consumer.held) == 5 and consumer.pending() == 5
        with pytest.raises(StoreUnavailable):  # still down: still held
            consumer.run_once(None)
        assert consumer.pending() == 5 and rds.xlen(dlq_key(s)) == 0
        assert sample("cc_ch_insert_fail_total", reason="unavailable") - unavailable == 2
    finally:
        local_clickhouse.start()
    wait_for(lambda: (consumer.run_once(None), consumer.pending() == 0)[1], timeout=30)
    assert consumer.held == []
    c = local_clickhouse.client(name)
    try:
        got = c.execute("SELECT event_id, count() FROM events_raw GROUP BY event_id")
    finally:
        c.disconnect()
    assert sorted(got) == sorted((e, 1) for e in sent)
    assert rds.xlen(dlq_key(s)) == 0
    clickhouse.reset_pools()


def test_a_frozen_clickhouse_times_out_into_sink_unavailable(
    local_clickhouse: Any, settings: Settings
) -> None:
    """SIGSTOPped server: the kernel accepts, nothing answers. The bounded read timeout
    turns it into SinkUnavailable within seconds (not a hang, not the entries' fault)."""
    name = f"cc_frz_{secrets.token_hex(3)}"
    url = local_clickhouse.create_database(name) + "?connect_timeout=1&send_receive_timeout=2"
    migrate(url)
    set_settings(replace(settings, clickhouse_url=url))
    clickhouse.reset_pools()
    local_clickhouse.pause()
    started = time.monotonic()
    try:
        with pytest.raises(SinkUnavailable):
            analytics.handle([entry(envelope(ev.AUTH_LOGIN, 3, {}, T0))])
    finally:
        local_clickhouse.resume()
    assert time.monotonic() - started < 8
    clickhouse.reset_pools()


def test_an_ingester_dying_between_insert_and_ack_duplicates_nothing(
    analytics_db: str, make_consumer: Any, settings: Settings
) -> None:
    """Consumer 1 reads a batch and INSERTs it but dies before acking; consumer 2
    reclaims the same entries and INSERTs them again. events_raw keeps one row per
    event (FINAL), and the views count each once."""
    s = replace(settings, clickhouse_url=analytics_db, worker_reclaim_idle_ms=30)
    set_settings(s)
    doomed = make_consumer("doomed", s)
    heir = make_consumer("heir", s)
    sent = [
        emit_event(
            21, ev.SHOP_PURCHASE, tx_id=i, status="success", price_gold=100 * i, gold_delta=-100 * i
        )["event_id"]
        for i in range(1, 6)
    ]
    batch = doomed.read_new(None)
    assert len(batch) == 5
    analytics.handle(batch)  # inserted … and the process dies here: no ack
    assert doomed.pending() == 5

    wait_for(lambda: (heir.run_once(None), heir.pending() == 0)[1], what="reclaimed and acked")

    assert scalar(analytics_db, "SELECT count() FROM events_raw") == 10  # both inserts happened
    assert scalar(analytics_db, "SELECT count() FROM events_raw FINAL") == 5
    assert sorted(
        scalar(analytics_db, "SELECT groupArray(event_id) FROM events_raw FINAL")
    ) == sorted(sent)
    assert scalar(analytics_db, "SELECT uniqExactIfMerge(purchases_ok) FROM mv_user_daily") == 5
    spent = scalar(
        analytics_db,
        "SELECT arraySum(arrayMap(t -> tupleElement(t, 2), groupUniqArrayIfMerge(spent_gold)))"
        " FROM mv_user_daily",
    )
    assert spent == 100 + 200 + 300 + 400 + 500
