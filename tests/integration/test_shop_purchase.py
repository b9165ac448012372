"""The unified purchase against the real PostgreSQL and Redis: effects, replays, refusals
(each compared before/after: balance, stock, ledger, purchases, inventory), limits."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text

from ccweb.db import autocommit, in_transaction
from ccweb.shop import receipts
from tests.factories import auth_headers, balance, create_product, create_user, ledger_sum


def _scalar(sql: str, **params: Any) -> Any:
    with autocommit() as conn:
        return conn.execute(text(sql), params).scalar()


def snapshot(user_id: int, product_id: int) -> dict[str, Any]:
    """Everything a purchase could change."""
    return {
        "balance": balance(user_id),
        "ledger_rows": _scalar("SELECT count(*) FROM wallet_ledger WHERE user_id = :u", u=user_id),
        "purchases": _scalar("SELECT count(*) FROM shop_purchases WHERE user_id = :u", u=user_id),
        "stock": _scalar("SELECT stock_remaining FROM shop_products WHERE id = :p", p=product_id),
        "items": _scalar(
            "SELECT coalesce(sum(quantity), 0) FROM user_items WHERE user_id = :u", u=user_id
        ),
        "success_events": _scalar(
            "SELECT count(*) FROM outbox WHERE user_id = :u AND event_type = 'shop.purchase'"
            " AND envelope -> 'payload' ->> 'status' = 'success'",
            u=user_id,
        ),
    }


def buy(client, headers, product_id, key, quantity=None):  # type: ignore[no-untyped-def]
    body: dict[str, Any] = {"product_id": product_id, "idempotency_key": key}
    if quantity is not None:
        body["quantity"] = quantity
    return client.post("/api/shop/purchase", json=body, headers=headers)


def test_item_purchase_debits_grants_signs_and_emits(client):
    user = create_user(gold=1000)
    product = create_product(price_gold=300, items=[{"code": "lucky_charm", "quantity": 2}])
    headers = auth_headers(client, user)

    resp = buy(client, headers, product["id"], "k-1")

    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "success"
    assert body["product_id"] == product["id"]
    assert body["gold_delta"] == -300
    assert body["gold_balance"] == 700 == balance(user["id"]) == ledger_sum(user["id"])
    assert body["settlement_status"] is None
    assert resp.headers.get("Idempotent-Replay") is None
    receipt = body["receipt"]
    assert set(receipt) >= {"integrity_hash", "signature", "signature_version"}
    verdict = receipts.verify(
        receipt["document"],
        receipt["integrity_hash"],
        receipt["signature"],
        receipt["signature_version"],
    )
    assert verdict.valid and verdict.key_state == "current"
    with autocommit() as conn:
        row = (
            conn.execute(text("SELECT * FROM shop_purchases WHERE id = :id"), {"id": body["tx_id"]})
            .mappings()
            .one()
        )
        items = conn.execute(
            text("SELECT item_code, quantity FROM user_items WHERE user_id = :u"),
            {"u": user["id"]},
        ).all()
        ledger = conn.execute(
            text(
                "SELECT source_type, delta_gold, source_id FROM wallet_ledger"
                " WHERE user_id = :u AND source_type LIKE 'shop%'"
            ),
            {"u": user["id"]},
        ).all()
        event = conn.execute(
            text("SELECT envelope FROM outbox WHERE event_type = 'shop.purchase'")
        ).scalar_one()
    assert (
        row["integrity_hash"]
        == receipt["integrity_hash"]
        == receipts.integrity_hash(row["receipt"])
    )
    assert row["response"]["gold_balance"] == 700
    assert [tuple(r) for r in items] == [("lucky_charm", 2)]
    assert [tuple(r) for r in ledger] == [("shop_purchase", -300, body["tx_id"])]
    assert event["payload"]["tx_id"] == body["tx_id"]
    assert event["payload"]["price_gold"] == 300
    assert event["payload"]["gold_balance"] == 700
    assert event["payload"]["status"] == "success"

    listed = client.get("/api/shop/purchases", headers=headers).get_json()["items"]
    assert [p["tx_id"] for p in listed] == [body["tx_id"]]
    assert listed[0]["receipt"]["signature"] == receipt["signature"]


def test_package_quantity_grants_gold_and_items(client):
    user = create_user(gold=1000)
    product = create_product(
        category="package",
        price_gold=200,
        gold_amount=50,
        items=[{"code": "spin_ticket", "quantity": 1}],
    )
    headers = auth_headers(client, user)
    body = buy(client, headers, product["id"], "q3", quantity=3).get_json()
    assert body["quantity"] == 3
    assert body["price_gold"] == 600 and body["gold_amount"] == 150
    assert body["gold_delta"] == -450
    assert balance(user["id"]) == 550 == ledger_sum(user["id"])
    assert snapshot(user["id"], product["id"])["items"] == 3


def test_conversion_credits_gold_pending_settlement(client):
    user = create_user(gold=0)
    product = create_product(
        category="conversion", price_gold=0, points_price=1000, gold_amount=5000
    )
    headers = auth_headers(client, user)
    body = buy(client, headers, product["id"], "conv-1").get_json()
    assert body["gold_delta"] == 5000 and body["gold_balance"] == 5000
    assert body["settlement_status"] == "pending"
    assert body["receipt"]["document"]["points_price"] == 1000
    assert (
        _scalar("SELECT settlement_status FROM shop_purchases WHERE id = :id", id=body["tx_id"])
        == "pending"
    )


def test_repeated_key_replays_without_a_second_effect(client):
    user = create_user(gold=1000)
    product = create_product(price_gold=100, stock=5)
    headers = auth_headers(client, user)
    first = buy(client, headers, product["id"], "same")
    before = snapshot(user["id"], product["id"])

    again = buy(client, headers, product["id"], "same")

    assert again.status_code == 200
    assert again.headers["Idempotent-Replay"] == "true"
    assert again.get_json() == first.get_json()
    assert snapshot(user["id"], product["id"]) == before
    assert before["stock"] == 4 and before["balance"] == 900


def test_same_key_for_another_purchase_is_a_duplicate(client):
    user = create_user(gold=1000)
    a, b = create_product(price_gold=100), create_product(price_gold=100)
    headers = auth_headers(client, user)
    assert buy(client, headers, a["id"], "k").status_code == 200
    before = snapshot(user["id"], b["id"])
    resp = buy(client, headers, b["id"], "k")
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "DUPLICATE"
    resp = buy(client, headers, a["id"], "k", quantity=2)
    assert resp.get_json()["error"]["code"] == "DUPLICATE"
    assert snapshot(user["id"], b["id"]) == before


def _refused(client, headers, user, product, key, status, code, quantity=None):  # type: ignore[no-untyped-def]
    before = snapshot(user["id"], product["id"])
    resp = buy(client, headers, product["id"], key, quantity)
    assert resp.status_code == status, resp.get_json()
    assert resp.get_json()["error"]["code"] == code
    assert snapshot(user["id"], product["id"]) == before
    return resp


@pytest.mark.parametrize("stock", [3, None])  # in a transaction / one autocommit statement
def test_insufficient_gold_changes_nothing_and_is_an_event(client, stock):
    user = create_user(gold=99)
    product = create_product(price_gold=100, stock=stock)
    headers = auth_headers(client, user)
    _refused(client, headers, user, product, "poor", 409, "INSUFFICIENT_GOLD")
    failed = _scalar("SELECT envelope -> 'payload' FROM outbox WHERE event_type = 'shop.purchase'")
    assert failed["status"] == "failed" and failed["reason"] == "INSUFFICIENT_GOLD"
    # the key was not used up: with enough gold the same key buys
    in_transaction(
        lambda s: __import__("ccweb.wallet.ledger", fromlist=["apply"]).apply(
            s, user_id=user["id"], delta=1, source_type="test", idempotency_key="top-up"
        )
    )
    assert buy(client, headers, product["id"], "poor").status_code == 200


def test_limit_once(client):
    user = create_user(gold=1000)
    starter = create_product(category="package", price_gold=10, gold_amount=500, limit_once=True)
    headers = auth_headers(client, user)
    _refused(client, headers, user, starter, "two-at-once", 400, "VALIDATION_ERROR", quantity=2)
    assert buy(client, headers, starter["id"], "first").status_code == 200
    _refused(client, headers, user, starter, "second", 409, "LIMIT_REACHED")
    # another player may still buy it
    other = create_user(gold=1000)
    assert buy(client, auth_headers(client, other), starter["id"], "first").status_code == 200


def test_tier_required(client):
    user = create_user(gold=1000, tier="STANDARD")
    vip = create_user(gold=1000, tier="VIP")
    product = create_product(price_gold=100, tier_required="PREMIUM")
    _refused(client, auth_headers(client, user), user, product, "t", 403, "FORBIDDEN")
    assert buy(client, auth_headers(client, vip), product["id"], "t").status_code == 200


def test_unknown_inactive_and_off_window_products_are_404(client, clock):
    from datetime import timedelta

    user = create_user(gold=1000)
    headers = auth_headers(client, user)
    now = clock.utcnow()
    inactive = create_product(is_active=False)
    later = create_product(starts_at=now + timedelta(hours=1))
    over = create_product(starts_at=now - timedelta(hours=2), ends_at=now - timedelta(hours=1))
    for product in (inactive, later, over):
        _refused(client, headers, user, product, f"k{product['id']}", 404, "NOT_FOUND")
    before = balance(user["id"])
    resp = buy(client, headers, 987654, "nope")
    assert resp.status_code == 404 and balance(user["id"]) == before
    clock.advance(3601)
    headers = auth_headers(client, user)  # the old access token expired meanwhile
    assert buy(client, headers, later["id"], "now-on-sale").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"product_id": 1},
        {"idempotency_key": "k"},
        {"product_id": "one", "idempotency_key": "k"},
        {"product_id": 1, "idempotency_key": ""},
        {"product_id": 1, "idempotency_key": "k" * 129},
        {"product_id": 1, "idempotency_key": "k", "quantity": 0},
        {"product_id": 1, "idempotency_key": "k", "quantity": 101},
        {"product_id": 1, "idempotency_key": "k", "quantity": 1.5},
        {"product_id": -1, "idempotency_key": "k"},
        [1, 2],
    ],
)
def test_bad_bodies_are_400_and_change_nothing(client, body):
    user = create_user(gold=1000)
    product = create_product(price_gold=100, stock=2)
    if isinstance(body, dict) and body.get("product_id") == 1:
        body = {**body, "product_id": product["id"]}
    headers = auth_headers(client, user)
    before = snapshot(user["id"], product["id"])
    resp = client.post("/api/shop/purchase", json=body, headers=headers)
    assert resp.status_code == 400, resp.get_json()
    assert resp.get_json()["error"]["code"] == "VALIDATION_ERROR"
    assert snapshot(user["id"], product["id"]) == before


def test_purchase_requires_auth_and_json(client):
    product = create_product()
    assert buy(client, {}, product["id"], "k").status_code == 401
    user = create_user()
    resp = client.post(
        "/api/shop/purchase",
        data=f"product_id={product['id']}",
        headers={**auth_headers(client, user), "Content-Type": "text/plain"},
    )
    assert resp.status_code == 415


def test_velocity_limit_is_429_with_retry_after(client, clock):
    user = create_user(gold=10_000)
    product = create_product(price_gold=1)
    headers = auth_headers(client, user)
    for n in range(10):
        assert buy(client, headers, product["id"], f"v{n}").status_code == 200
    # a replay is not a new purchase and is never limited
    assert buy(client, headers, product["id"], "v0").status_code == 200
    before = snapshot(user["id"], product["id"])
    resp = buy(client, headers, product["id"], "v10")
    assert resp.status_code == 429
    assert resp.get_json()["error"]["code"] == "RATE_LIMITED"
    assert 1 <= int(resp.headers["Retry-After"]) <= 11  # the window, rounded up
    assert snapshot(user["id"], product["id"]) == before
    clock.advance(10.5)
    assert buy(client, headers, product["id"], "v10").status_code == 200


def test_a_held_key_lock_is_in_progress(client, rds, settings):
    user = create_user(gold=1000)
    product = create_product(price_gold=100)
    headers = auth_headers(client, user)
    lock = f"{settings.redis_prefix}:shop:lock:{user['id']}:busy"
    rds.set(lock, "another-request", px=10_000)
    before = snapshot(user["id"], product["id"])
    resp = buy(client, headers, product["id"], "busy")
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "IN_PROGRESS"
    assert snapshot(user["id"], product["id"]) == before
    rds.delete(lock)
    assert buy(client, headers, product["id"], "busy").status_code == 200


def test_the_database_refuses_a_second_purchase_with_a_key(client):
    """Layer 2 on its own: if the Redis lock is lost, the unique key still holds."""
    from sqlalchemy.exc import IntegrityError

    from ccweb.shop import purchase

    user = create_user(gold=1000)
    product = create_product(price_gold=100)
    headers = auth_headers(client, user)
    assert buy(client, headers, product["id"], "once").status_code == 200
    with autocommit() as conn:
        row = purchase._read(conn, user["id"], product["id"], "another")
    with pytest.raises(IntegrityError) as err:
        in_transaction(
            lambda s: purchase._settle(
                s, row, user["id"], "once", 1, purchase.clock.utcnow(), purchase.Effects()
            )
        )
    assert purchase._constraint(err.value) == purchase.KEY_CONSTRAINT
    assert balance(user["id"]) == 900 == ledger_sum(user["id"])


def _concurrently(n: int, fn) -> list[Any]:  # type: ignore[no-untyped-def]
    results: list[Any] = [None] * n
    start = threading.Barrier(n)

    def run(i: int) -> None:
        start.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_200_concurrent_buyers_of_a_10_stock_package(app, client):
    product = create_product(category="package", price_gold=100, gold_amount=10, stock=10)
    buyers = [create_user(gold=1000) for _ in range(200)]
    headers = [auth_headers(client, u) for u in buyers]

    def attempt(i: int) -> tuple[int, str | None]:
        resp = buy(app.test_client(), headers[i], product["id"], f"buy-{i}")
        body = resp.get_json()
        return resp.status_code, (body.get("error") or {}).get("code")

    outcomes = Counter(_concurrently(200, attempt))

    assert outcomes == {(200, None): 10, (409, "OUT_OF_STOCK"): 190}
    assert _scalar("SELECT stock_remaining FROM shop_products WHERE id = :p", p=product["id"]) == 0
    assert _scalar("SELECT count(*) FROM shop_purchases") == 10
    assert _scalar("SELECT count(*) FROM wallet_ledger WHERE source_type = 'shop_purchase'") == 10
    winners = [u["id"] for u in buyers if balance(u["id"]) != 1000]
    assert len(winners) == 10
    assert all(balance(uid) == 910 == ledger_sum(uid) for uid in winners)


def test_20_concurrent_requests_with_one_key_buy_once(app, client):
    user = create_user(gold=1000)
    product = create_product(price_gold=100, stock=50)
    headers = auth_headers(client, user)

    def attempt(i: int) -> tuple[int, Any]:
        resp = buy(app.test_client(), headers, product["id"], "one-key")
        return resp.status_code, resp.get_json()

    results = _concurrently(20, attempt)

    ok = [body for status, body in results if status == 200]
    busy = [body for status, body in results if status == 409]
    assert len(ok) + len(busy) == 20 and ok
    assert {body["tx_id"] for body in ok} == {ok[0]["tx_id"]}
    assert all(b["error"]["code"] == "IN_PROGRESS" for b in busy)
    assert _scalar("SELECT count(*) FROM shop_purchases") == 1
    assert balance(user["id"]) == 900 == ledger_sum(user["id"])
    assert _scalar("SELECT stock_remaining FROM shop_products WHERE id = :p", p=product["id"]) == 49


def test_attempts_are_counted_by_state_and_reason(client, rds, settings):
    from prometheus_client import REGISTRY

    def count(state: str, reason: str = "") -> float:
        labels = {"state": state, "reason": reason}
        return REGISTRY.get_sample_value("cc_shop_purchase_attempt_total", labels) or 0.0

    before = {
        k: count(*k) for k in [("new",), ("replay",), ("in_progress",), ("failed", "OUT_OF_STOCK")]
    }
    user = create_user(gold=1000)
    product = create_product(price_gold=100, stock=1)
    headers = auth_headers(client, user)
    assert buy(client, headers, product["id"], "a").status_code == 200
    assert buy(client, headers, product["id"], "a").status_code == 200  # replay
    assert buy(client, headers, product["id"], "b").status_code == 409  # sold out
    rds.set(f"{settings.redis_prefix}:shop:lock:{user['id']}:c", "x", px=5000)
    assert buy(client, headers, product["id"], "c").status_code == 409  # in progress
    assert count("new") - before[("new",)] == 1
    assert count("replay") - before[("replay",)] == 1
    assert count("failed", "OUT_OF_STOCK") - before[("failed", "OUT_OF_STOCK")] == 1
    assert count("in_progress") - before[("in_progress",)] == 1
    stock = REGISTRY.get_sample_value("cc_shop_stock_level", {"sku": product["sku"]})
    assert stock == 0
