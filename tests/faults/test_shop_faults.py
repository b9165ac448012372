"""The purchase under faults, against the real server and worker on private stores.

- A web process SIGKILLed between the purchase's commit and its response: the client's
  retry with the same idempotency_key, sent to another process while the dead one's
  Redis key lock is still held, gets the original body (``Idempotent-Replay: true``) —
  the stored purchase is read before the lock is judged — and the money, the stock and
  the purchase row exist once. The ``shop.purchase`` event the dead process never
  published reaches the consumers through the outbox relay.
- Redis or PostgreSQL stopped: the purchase answers 503 ``SERVICE_UNAVAILABLE`` at once
  and changes nothing (balance, stock, ledger, purchases, inventory, events); once the
  store is back, a retry with the same key buys exactly once.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest

from ccweb.shop import purchase
from tests.factories import create_product
from tests.faults.api import Api, Reply, ledger_matches_balance
from tests.faults.stores import FaultStack
from tests.faults.test_retry_after_crash import KILL_AFTER_COMMIT
from tests.faults.test_store_hangs import assert_unavailable
from tests.processes import wait_for

PRICE = 300
STOCK = 5
ITEM = "lucky_charm"
# A refused store costs a purchase a failed connect, not a timeout: far below this.
QUICK_S = 2.5


def buy(api: Api, product_id: int, key: str) -> Reply:
    return api.call(
        "POST", "/api/shop/purchase", {"product_id": product_id, "idempotency_key": key}
    )


def new_product() -> dict[str, Any]:
    """A limited item (stock shows whether a unit was taken)."""
    return create_product(
        price_gold=PRICE, stock=STOCK, items=[{"code": ITEM, "quantity": 1}], name="Fault item"
    )


def snapshot(stack: FaultStack, user_id: int, product_id: int) -> dict[str, Any]:
    """Everything a purchase could change, read straight from the database."""
    (row,) = stack.sql(
        """SELECT (SELECT gold_balance FROM users WHERE id = %(u)s),
                  (SELECT count(*) FROM wallet_ledger WHERE user_id = %(u)s),
                  (SELECT count(*) FROM wallet_ledger
                   WHERE user_id = %(u)s AND source_type = 'shop_purchase'),
                  (SELECT count(*) FROM shop_purchases WHERE user_id = %(u)s),
                  (SELECT stock_remaining FROM shop_products WHERE id = %(p)s),
                  (SELECT coalesce(sum(quantity), 0) FROM user_items WHERE user_id = %(u)s),
                  (SELECT count(*) FROM outbox
                   WHERE user_id = %(u)s AND event_type = 'shop.purchase')""",
        {"u": user_id, "p": product_id},
    )
    names = ("balance", "ledger_rows", "debits", "purchases", "stock", "items", "events")
    return dict(zip(names, row, strict=True))


def bought_once(stack: FaultStack, user_id: int, product_id: int, before: dict) -> None:
    """Exactly one purchase's effects since ``before``, and the ledger explains the
    balance."""
    assert snapshot(stack, user_id, product_id) == {
        **before,
        "balance": before["balance"] - PRICE,
        "ledger_rows": before["ledger_rows"] + 1,  # the debit (an item grants no gold)
        "debits": before["debits"] + 1,
        "purchases": before["purchases"] + 1,
        "stock": before["stock"] - 1,
        "items": before["items"] + 1,
        "events": before["events"] + 1,
    }
    assert ledger_matches_balance(stack, user_id)


def test_sigkill_between_purchase_commit_and_response_then_retry_replays(
    fault_stack: FaultStack, fault_inprocess
):
    stack = fault_stack
    _, port_b = stack.start_server()
    # the dead process's key lock must outlive the retry, whatever the machine's speed
    doomed, port_a = stack.start_server(**KILL_AFTER_COMMIT, CC_SHOP_LOCK_TTL_S="120")
    player = Api(port_b)
    uid = player.signup(prefix="shopkill")["id"]
    product = new_product()
    before = snapshot(stack, uid, product["id"])

    with pytest.raises((http.client.HTTPException, ConnectionError)):
        buy(player.on(port_a), product["id"], "crash-buy")
    assert doomed.wait(10) == -9  # SIGKILL: died after committing, before answering

    (stored,) = stack.sql(
        "SELECT id, response FROM shop_purchases WHERE user_id = %s AND idempotency_key = %s",
        (uid, "crash-buy"),
    )
    tx_id, response = stored
    assert response["status"] == "success" and response["tx_id"] == tx_id
    bought_once(stack, uid, product["id"], before)
    assert stack.rds().exists(purchase._lock_name(uid, "crash-buy"))  # still held by A

    retry = buy(player, product["id"], "crash-buy")
    assert retry.status == 200, retry
    assert retry.headers.get("idempotent-replay") == "true"
    assert retry.body == response
    assert retry.body["gold_balance"] == before["balance"] - PRICE
    again = buy(player, product["id"], "crash-buy")
    assert again.status == 200 and again.body == response
    assert again.headers.get("idempotent-replay") == "true"
    bought_once(stack, uid, product["id"], before)  # still once

    # A never published its event; the relay does, and every group processes it
    (event_id,) = stack.sql(
        "SELECT event_id FROM outbox WHERE user_id = %s AND event_type = 'shop.purchase'",
        (uid,),
    )[0]
    stack.start_worker("--burst")
    wait_for(
        lambda: json.loads(stack.manage_output("reconcile", "--grace", "0"))["ok"],
        30,
        "every committed event processed, and the money consistent",
    )
    consumers = stack.sql(
        "SELECT consumer FROM processed_events WHERE event_id = %s ORDER BY consumer",
        (event_id,),
    )
    # every group that records what it applied, once each (segments: the RFM recompute)
    assert [c for (c,) in consumers] == ["activity", "progress", "segments"]


def test_redis_down_purchase_is_503_at_once_and_changes_nothing(
    fault_stack: FaultStack, fault_inprocess
):
    """Redis stopped (connections refused): the key lock cannot be taken, so the purchase
    must not run at all. When Redis is back (empty: the lock and the velocity counters
    are gone) the same key buys once; the database constraint is what holds then."""
    stack = fault_stack
    _, port = stack.start_server()
    player = Api(port)
    uid = player.signup(prefix="shopredis")["id"]
    product = new_product()
    assert player.call("GET", "/api/shop/catalog").status == 200  # warm
    before = snapshot(stack, uid, product["id"])

    stack.redis.stop()
    try:
        for _ in range(2):  # a retry during the outage is refused the same way
            reply = buy(player, product["id"], "redis-down")
            assert_unavailable(reply)
            assert reply.seconds < QUICK_S, reply
        assert snapshot(stack, uid, product["id"]) == before
    finally:
        stack.redis.start()

    first = wait_for(
        lambda: (r := buy(player, product["id"], "redis-down")).status != 503 and r,
        15,
        "the purchase to be served again",
    )
    assert first.status == 200, first
    assert first.headers.get("idempotent-replay") is None  # the outage bought nothing
    assert first.body["gold_balance"] == before["balance"] - PRICE
    again = buy(player, product["id"], "redis-down")
    assert again.status == 200 and again.headers.get("idempotent-replay") == "true"
    assert again.body == first.body
    bought_once(stack, uid, product["id"], before)


def test_postgres_down_purchase_is_503_and_changes_nothing(
    fault_stack: FaultStack, fault_inprocess
):
    """PostgreSQL stopped: 503 at once; the key lock taken for the attempt is given back
    (otherwise the player's retry would meet IN_PROGRESS for the lock's whole TTL). When
    PostgreSQL is back the same key buys once."""
    stack = fault_stack
    # a long lock TTL: a lock left behind would still be there for the retry to meet
    _, port = stack.start_server(CC_SHOP_LOCK_TTL_S="120")
    player = Api(port)
    uid = player.signup(prefix="shoppg")["id"]
    product = new_product()
    before = snapshot(stack, uid, product["id"])

    stack.pg.stop()
    try:
        for _ in range(2):
            reply = buy(player, product["id"], "pg-down")
            assert_unavailable(reply)
            assert reply.seconds < QUICK_S, reply
        assert not stack.rds().exists(purchase._lock_name(uid, "pg-down"))
    finally:
        stack.pg.start()
    assert snapshot(stack, uid, product["id"]) == before

    first = wait_for(
        lambda: (r := buy(player, product["id"], "pg-down")).status != 503 and r,
        15,
        "the purchase to be served again",
    )
    assert first.status == 200, first
    assert first.headers.get("idempotent-replay") is None
    assert first.body["gold_balance"] == before["balance"] - PRICE
    again = buy(player, product["id"], "pg-down")
    assert again.status == 200 and again.headers.get("idempotent-replay") == "true"
    assert again.body == first.body
    bought_once(stack, uid, product["id"], before)
