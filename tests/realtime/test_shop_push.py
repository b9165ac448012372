"""Shop purchases are pushed to the player's sockets (real server + worker): a purchase
becomes a ``purchase_update`` with its tx_id and the new balance, a refusal one with
``status: failed`` and the reason, and a replayed key — no new purchase — none at all."""

from __future__ import annotations

from typing import Any

from tests.factories import create_product
from tests.realtime.conftest import Player, Stack, Ws


def buy(stack: Stack, token: str, product_id: int, key: str) -> tuple[int, Any]:
    return stack.call(
        "POST", "/api/shop/purchase", token, {"product_id": product_id, "idempotency_key": key}
    )


def test_a_purchase_and_a_refusal_are_pushed_and_a_replay_is_not(
    stack: Stack, player: Player
) -> None:
    pack = create_product(
        category="package", price_gold=1_500, gold_amount=200, stock=3, name="Push pack"
    )
    dear = create_product(price_gold=1_000_000)
    ws = Ws.connect(stack.url(token=player.token))
    _, state = ws.opening()
    assert state["data"]["profile"]["gold_balance"] == 100_000

    status, bought = buy(stack, player.token, pack["id"], "push-1")
    assert status == 200, bought
    pushed = ws.until("purchase_update")
    data = pushed["data"]
    assert pushed["user_id"] == player.user["id"]
    assert data["status"] == "success"
    assert data["tx_id"] == bought["tx_id"]
    assert data["product_id"] == pack["id"]
    assert data["price_gold"] == 1_500 and data["gold_amount"] == 200
    assert data["gold_balance"] == bought["gold_balance"] == 100_000 - 1_500 + 200

    status, again = buy(stack, player.token, pack["id"], "push-1")  # a retry: replayed
    assert status == 200 and again == bought
    status, refused = buy(stack, player.token, dear["id"], "push-2")
    assert status == 409 and refused["error"]["code"] == "INSUFFICIENT_GOLD", refused

    # the next purchase_update is the refusal: the replay pushed nothing
    failed = ws.until("purchase_update")["data"]
    assert failed["status"] == "failed"
    assert failed["reason"] == "INSUFFICIENT_GOLD"
    assert failed["product_id"] == dear["id"]
    assert "tx_id" not in failed  # nothing was bought
    kinds = [m["type"] for m in ws.pushes()]
    assert kinds.count("purchase_update") == 2, kinds
    seqs = [m["seq"] for m in ws.pushes()]
    assert seqs == list(range(1, len(seqs) + 1))  # no gap: nothing else was sent meanwhile
    ws.close()
