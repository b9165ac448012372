"""Shop purchases drive ``spend_gold`` through the real ``progress`` group: a purchase
made over the API advances event and mission requirements by its price, exactly once
(a replayed key is not a second purchase), and a refused purchase — also published, as
a ``shop.purchase`` event with ``status: failed`` — advances nothing."""

from __future__ import annotations

from typing import Any

from ccweb import events
from tests.factories import (
    auth_headers,
    balance,
    create_event,
    create_mission,
    create_product,
    create_user,
)
from tests.worker._support import all_entries, group_info, progress_consumer, run_burst
from tests.worker.test_progress import join, participation, q


def buy(client, headers, product_id: int, key: str, quantity: int = 1):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/shop/purchase",
        json={"product_id": product_id, "idempotency_key": key, "quantity": quantity},
        headers=headers,
    )


def mission_progress(user_id: int, mission_id: int) -> list[int] | None:
    rows = q(
        "SELECT progress FROM user_missions WHERE user_id = :u AND mission_id = :m",
        u=user_id,
        m=mission_id,
    )
    return rows[0]["progress"] if rows else None


def purchase_entries(rds, settings, user_id: int) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The ``shop.purchase`` stream entries of the player: (stream, id, status)."""
    import json

    out = []
    for stream, eid, fields in all_entries(rds, settings):
        if fields["event_type"] != events.SHOP_PURCHASE or int(fields["user_id"]) != user_id:
            continue
        out.append({"stream": stream, "id": eid, **json.loads(fields["data"])})
    return out


def _stream_id(eid: str) -> tuple[int, int]:
    ms, _, seq = eid.partition("-")
    return int(ms), int(seq)


def test_a_purchase_advances_spend_gold_by_its_price_once(client, settings, rds):
    user = create_user(gold=5_000)
    headers = auth_headers(client, user)
    product = create_product(price_gold=300, items=[{"code": "lucky_charm", "quantity": 1}])
    eid = create_event(
        [
            {"type": "spend_gold", "target": 10_000},
            {"type": "spend_gold", "game_type": "slot", "target": 10_000},  # games only
            {"type": "plays", "target": 10},
        ]
    )
    mid = create_mission("weekly", [{"type": "spend_gold", "target": 10_000}])
    join(user["id"], eid)

    first = buy(client, headers, product["id"], "spend-1", quantity=2)
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["price_gold"] == 600
    replay = buy(client, headers, product["id"], "spend-1", quantity=2)
    assert replay.headers.get("Idempotent-Replay") == "true"  # not a second purchase
    run_burst(progress_consumer(rds, settings))

    assert participation(user["id"], eid)["progress"] == [600, 0, 0]
    assert mission_progress(user["id"], mid) == [600]

    assert buy(client, headers, product["id"], "spend-2").status_code == 200
    run_burst(progress_consumer(rds, settings))
    assert participation(user["id"], eid)["progress"] == [900, 0, 0]
    assert mission_progress(user["id"], mid) == [900]
    assert balance(user["id"]) == 5_000 - 900
    done = q(
        "SELECT count(*) AS n FROM processed_events p JOIN outbox o ON o.event_id = p.event_id"
        " WHERE p.consumer = 'progress' AND o.event_type = 'shop.purchase'"
    )
    assert done[0]["n"] == 2  # the two purchases, each once


def test_a_refused_purchase_advances_nothing(client, settings, rds):
    user = create_user(gold=250)
    headers = auth_headers(client, user)
    product = create_product(price_gold=300)
    eid = create_event([{"type": "spend_gold", "target": 10_000}])
    mid = create_mission("daily", [{"type": "spend_gold", "target": 10_000}])
    join(user["id"], eid)

    refused = buy(client, headers, product["id"], "too-dear")
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "INSUFFICIENT_GOLD"
    (failed,) = purchase_entries(rds, settings, user["id"])  # published like a success
    assert failed["payload"]["status"] == "failed"
    assert failed["payload"]["reason"] == "INSUFFICIENT_GOLD"

    run_burst(progress_consumer(rds, settings))

    # the group did read the refusal (its cursor is past it, nothing pending) ...
    info = group_info(rds, failed["stream"], "progress")
    assert _stream_id(info["last-delivered-id"]) >= _stream_id(failed["id"])
    assert info["pending"] == 0
    # ... and counted nothing for it
    assert participation(user["id"], eid)["progress"] == [0]
    assert participation(user["id"], eid)["progress_version"] == 0
    assert mission_progress(user["id"], mid) in (None, [0])
    assert balance(user["id"]) == 250


def test_purchases_with_nothing_to_count_still_reconcile(client, settings, rds):
    """A refused purchase and a free one (a conversion costs no gold) advance nothing,
    yet the progress group records them: reconcile must not call them lost."""
    from ccweb import db
    from ccweb.ops.reconcile import reconcile
    from worker.handlers import activity
    from worker.runner import GroupConsumer

    user = create_user(gold=10)
    headers = auth_headers(client, user)
    pricey = create_product(price_gold=500)
    conversion = create_product(
        category="conversion", price_gold=0, points_price=100, gold_amount=1_000
    )
    assert buy(client, headers, pricey["id"], "refused").status_code == 409
    assert buy(client, headers, conversion["id"], "free").status_code == 200

    run_burst(progress_consumer(rds, settings))
    act = GroupConsumer(rds, settings, activity.GROUP, activity.handle, "a1")
    act.ensure_groups()
    run_burst(act)

    with db.engine().connect() as conn:
        report = reconcile(conn, grace_s=0)
    assert report["ok"], report
    assert report["lost_events"] == {"activity": 0, "progress": 0}
