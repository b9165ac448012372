"""The ``segments`` group recomputes a player's RFM segment after a purchase made over the
API (and after a void), through the real streams and worker runner: the row says
``source = 'incremental'``, a changed label bumps the player's dashboard version, a
refused purchase changes nothing, and a redelivered event is not handled twice."""

from __future__ import annotations

import json
import uuid
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import text

from ccweb.db import in_transaction
from ccweb.player_versions import version_key
from ccweb.segments import jobs
from tests.factories import auth_headers, create_product, create_user
from tests.integration.test_shop_settlement import send
from tests.worker._support import run_burst
from worker.entries import Entry
from worker.handlers import segments
from worker.runner import GroupConsumer


def consumer(rds, settings) -> GroupConsumer:  # type: ignore[no-untyped-def]
    c = GroupConsumer(rds, settings, segments.GROUP, segments.handle, "s1")
    c.ensure_groups()
    return c


def q(sql: str, **params: Any) -> list[dict[str, Any]]:
    return in_transaction(lambda s: [dict(r) for r in s.execute(text(sql), params).mappings()])


def row(user_id: int) -> dict[str, Any] | None:
    got = q("SELECT * FROM user_segments WHERE user_id = :u", u=user_id)
    return got[0] if got else None


def buy(client, headers, price: int = 0, **product: Any):  # type: ignore[no-untyped-def]
    pid = create_product(**({"price_gold": price} | product))["id"]
    return client.post(
        "/api/shop/purchase",
        json={"product_id": pid, "idempotency_key": uuid.uuid4().hex},
        headers=headers,
    )


def population(client, n: int = 19) -> None:  # type: ignore[no-untyped-def]
    """``n`` other buyers who spent 100, 200, … today (19: m_p60 = 1200, m_p95 = 1900)."""
    for i in range(n):
        other = create_user(gold=10_000)
        assert buy(client, auth_headers(client, other), 100 * (i + 1)).status_code == 200


def version(rds, user_id: int) -> int:  # type: ignore[no-untyped-def]
    return int(rds.get(version_key(user_id)) or 0)


def lag_count() -> float:
    return REGISTRY.get_sample_value("cc_segment_realtime_lag_seconds_count") or 0.0


def test_a_purchase_through_the_api_recomputes_the_player(client, settings, rds, clock):
    population(client)
    run_burst(consumer(rds, settings))  # their own rows (before any batch: cut-offs computed)
    th = jobs.batch(clock.utcnow()).thresholds
    assert (th["m_p60"], th["m_p95"]) == (1200, 1900)
    user = create_user(gold=10_000)
    headers = auth_headers(client, user)
    lags = lag_count()

    assert buy(client, headers, 300).status_code == 200
    before = version(rds, user["id"])  # the purchase itself bumped it once
    run_burst(consumer(rds, settings))
    seg = row(user["id"])
    assert seg is not None
    assert (seg["label"], seg["source"], seg["f_count30"], seg["m_sum30"], seg["r_days"]) == (
        "Low", "incremental", 1, 300, 0,
    )  # fmt: skip
    assert version(rds, user["id"]) == before + 1  # new label: the dashboard renders again
    assert lag_count() == lags + 1

    clock.advance(60)
    assert buy(client, headers, 1600).status_code == 200  # M = 1900 = the stored p95
    before = version(rds, user["id"])
    run_burst(consumer(rds, settings))
    seg = row(user["id"])
    assert seg is not None
    assert (seg["label"], seg["f_count30"], seg["m_sum30"]) == ("Whale", 2, 1900)
    assert version(rds, user["id"]) == before + 1

    clock.advance(60)
    assert buy(client, headers, 1).status_code == 200  # still a whale: no extra bump
    before = version(rds, user["id"])
    run_burst(consumer(rds, settings))
    seg = row(user["id"])
    assert seg is not None and seg["m_sum30"] == 1901 and seg["label"] == "Whale"
    assert version(rds, user["id"]) == before
    handled = q("SELECT count(*) AS n FROM processed_events WHERE consumer = 'segments'")
    assert handled[0]["n"] == 19 + 3


def test_a_first_purchase_before_any_batch(client, settings, rds, clock):
    user = create_user(gold=1_000)
    assert buy(client, auth_headers(client, user), 300).status_code == 200
    run_burst(consumer(rds, settings))
    seg = row(user["id"])
    assert seg is not None and seg["label"] == "Whale"  # the only spender is the p95
    assert q("SELECT count(*) AS n FROM segment_thresholds")[0]["n"] == 0  # only a batch stores


def test_a_chargeback_of_the_only_purchase_removes_the_segment(client, settings, rds, clock):
    user = create_user(gold=0)
    resp = buy(client, auth_headers(client, user), category="conversion", points_price=100,
               gold_amount=1_000)  # fmt: skip
    assert resp.status_code == 200, resp.get_json()
    run_burst(consumer(rds, settings))
    seg = row(user["id"])
    assert seg is not None and seg["m_sum30"] == 100  # a pending conversion counts
    tx_id = resp.get_json()["tx_id"]
    assert send(client, tx_id, "settled").status_code == 200
    run_burst(consumer(rds, settings))  # settling changes nothing: not even handled
    assert q("SELECT count(*) AS n FROM processed_events WHERE consumer = 'segments'")[0]["n"] == 1
    assert send(client, tx_id, "voided").status_code == 200  # a chargeback
    before = version(rds, user["id"])
    run_burst(consumer(rds, settings))
    assert row(user["id"]) is None
    assert version(rds, user["id"]) == before + 1


def test_a_refused_purchase_changes_nothing(client, settings, rds, clock):
    user = create_user(gold=10)
    assert buy(client, auth_headers(client, user), 300).status_code == 409
    run_burst(consumer(rds, settings))
    assert row(user["id"]) is None
    assert q("SELECT count(*) AS n FROM processed_events WHERE consumer = 'segments'")[0]["n"] == 0


def test_a_redelivered_event_is_handled_once(client, settings, rds, clock):
    user = create_user(gold=1_000)
    assert buy(client, auth_headers(client, user), 300).status_code == 200
    (envelope,) = [
        r["envelope"] for r in q("SELECT envelope FROM outbox WHERE event_type = 'shop.purchase'")
    ]
    entry = Entry(
        "s",
        "1-0",
        {
            "event_id": envelope["event_id"],
            "event_type": envelope["event_type"],
            "data": json.dumps(envelope),
        },
    )
    segments.handle([entry, entry])  # twice in one batch
    first = row(user["id"])
    assert first is not None
    segments.handle([entry])  # a redelivery: skipped, the row is not written again
    again = row(user["id"])
    assert again is not None and again["updated_at"] == first["updated_at"]
