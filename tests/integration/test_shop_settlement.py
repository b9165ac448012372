"""Settlement of conversion purchases through the signed webhook, against the real
PostgreSQL and Redis: signature checks (401, nothing changed), the state machine applied
exactly once (replays, concurrent duplicates), voids that take back gold without ever
going negative, the ``shop.settlement`` outbox row, and the provider stub end to end."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from ccweb.db import in_transaction
from ccweb.shop import keyring, settlement_stub
from tests.factories import auth_headers, balance, create_product, create_user, ledger_sum
from tests.processes import start_server, stop

WEBHOOK = "/api/shop/webhook/settlement"


@pytest.fixture(autouse=True)
def fresh_keys() -> Iterator[None]:
    """The tables (keys included) are emptied between tests; forget this process's cached
    signing keys with them."""
    keyring.forget()
    yield
    keyring.forget()


def buy_conversion(client: Any, user: dict[str, Any], gold: int = 1000) -> dict[str, Any]:
    """A conversion bought through the real purchase route (gold credited, pending)."""
    product = create_product(
        category="conversion", price_gold=0, points_price=100, gold_amount=gold
    )
    resp = client.post(
        "/api/shop/purchase",
        json={"product_id": product["id"], "idempotency_key": uuid.uuid4().hex},
        headers=auth_headers(client, user),
    )
    assert resp.status_code == 200, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    assert body["settlement_status"] == "pending"
    return body


def buy_item(client: Any, user: dict[str, Any], price: int) -> None:
    """Spend ``price`` gold on an item (the real purchase route)."""
    product = create_product(
        category="item", price_gold=price, items=[{"code": "hat", "quantity": 1}]
    )
    resp = client.post(
        "/api/shop/purchase",
        json={"product_id": product["id"], "idempotency_key": uuid.uuid4().hex},
        headers=auth_headers(client, user),
    )
    assert resp.status_code == 200, resp.get_json()


def signed_callback(tx_id: int, status: str, **kw: Any) -> tuple[bytes, dict[str, str]]:
    timestamp = kw.pop("timestamp", None)
    key = kw.pop("key", None)
    return settlement_stub.signed(
        settlement_stub.build_callback(tx_id, status, **kw), timestamp=timestamp, key=key
    )


def post(client: Any, raw: bytes, headers: dict[str, str]) -> Any:
    return client.post(WEBHOOK, data=raw, headers=headers)


def send(client: Any, tx_id: int, status: str, **kw: Any) -> Any:
    return post(client, *signed_callback(tx_id, status, **kw))


def state(user_id: int, tx_id: int) -> dict[str, Any]:
    """Everything a callback could change, to compare before/after."""

    def read(s: Any) -> dict[str, Any]:
        purchase = (
            s.execute(
                text(
                    "SELECT settlement_status, settled_at, reversed_gold, unrecovered_gold"
                    " FROM shop_purchases WHERE id = :tx"
                ),
                {"tx": tx_id},
            )
            .mappings()
            .one()
        )
        ledger = s.execute(
            text(
                "SELECT id, delta_gold, source_type, idempotency_key FROM wallet_ledger"
                " WHERE user_id = :u ORDER BY id"
            ),
            {"u": user_id},
        ).all()
        callbacks = s.execute(
            text(
                "SELECT callback_id, status, applied FROM shop_settlement_callbacks"
                " ORDER BY callback_id"
            )
        ).all()
        outbox = s.execute(
            text("SELECT count(*) FROM outbox WHERE event_type = 'shop.settlement'")
        ).scalar_one()
        audits = s.execute(text("SELECT count(*) FROM admin_audit")).scalar_one()
        return {
            "purchase": dict(purchase),
            "ledger": [tuple(r) for r in ledger],
            "callbacks": [tuple(r) for r in callbacks],
            "outbox": outbox,
            "audits": audits,
        }

    return {**in_transaction(read), "balance": balance(user_id)}


def settlement_events(tx_id: int) -> list[dict[str, Any]]:
    rows = in_transaction(
        lambda s: (
            s.execute(
                text(
                    "SELECT envelope FROM outbox WHERE event_type = 'shop.settlement'"
                    " AND (envelope->'payload'->>'tx_id')::bigint = :tx ORDER BY id"
                ),
                {"tx": tx_id},
            )
            .scalars()
            .all()
        )
    )
    return [r if isinstance(r, dict) else json.loads(r) for r in rows]


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ------------------------------------------------------------------ signature checks


def _wrong_secret(tx: int) -> tuple[bytes, dict[str, str]]:
    real = keyring.current("settlement")
    fake = keyring.SigningKey("settlement", real.version, b"x" * 32, "current")
    return signed_callback(tx, "settled", key=fake)


def _tampered_body(tx: int) -> tuple[bytes, dict[str, str]]:
    raw, headers = signed_callback(tx, "settled")
    return raw.replace(b'"settled"', b'"voided"'), headers


def _missing_headers(tx: int) -> tuple[bytes, dict[str, str]]:
    raw, _ = signed_callback(tx, "settled")
    return raw, {"Content-Type": "application/json"}


def _stale(tx: int) -> tuple[bytes, dict[str, str]]:
    from ccweb import clock

    return signed_callback(tx, "settled", timestamp=int(clock.time()) - 301)


def _future(tx: int) -> tuple[bytes, dict[str, str]]:
    from ccweb import clock

    return signed_callback(tx, "settled", timestamp=int(clock.time()) + 301)


def _unknown_version(tx: int) -> tuple[bytes, dict[str, str]]:
    real = keyring.current("settlement")
    return signed_callback(
        tx, "settled", key=keyring.SigningKey("settlement", 99, real.secret, "current")
    )


def _malformed_header(tx: int) -> tuple[bytes, dict[str, str]]:
    raw, headers = signed_callback(tx, "settled")
    headers["X-Settlement-Signature"] = headers["X-Settlement-Signature"].split("=", 1)[1]
    return raw, headers


def _timestamp_swapped(tx: int) -> tuple[bytes, dict[str, str]]:
    """A valid signature presented with another timestamp (the timestamp is signed)."""
    raw, headers = signed_callback(tx, "settled")
    headers["X-Settlement-Timestamp"] = str(int(headers["X-Settlement-Timestamp"]) - 1)
    return raw, headers


@pytest.mark.parametrize(
    "forge",
    [
        _wrong_secret,
        _tampered_body,
        _missing_headers,
        _stale,
        _future,
        _unknown_version,
        _malformed_header,
        _timestamp_swapped,
    ],
)
def test_a_callback_without_a_valid_signature_is_401_and_changes_nothing(client, clock, forge):
    user = create_user(gold=0)
    tx = buy_conversion(client, user)["tx_id"]
    before = state(user["id"], tx)
    rejected = metric("cc_shop_settlement_total", result="rejected")

    resp = post(client, *forge(tx))

    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "UNAUTHORIZED"
    assert state(user["id"], tx) == before
    assert before["purchase"]["settlement_status"] == "pending"
    assert metric("cc_shop_settlement_total", result="rejected") == rejected + 1


def test_timestamp_tolerance_is_300_seconds_of_the_app_clock(client, clock):
    user = create_user(gold=0)
    tx = buy_conversion(client, user)["tx_id"]
    raw, headers = signed_callback(tx, "settled")
    clock.advance(300)
    assert post(client, raw, headers).status_code == 200  # exactly at the edge: accepted
    raw, headers = signed_callback(tx, "voided")
    clock.advance(301)
    assert post(client, raw, headers).status_code == 401
    assert state(user["id"], tx)["purchase"]["settlement_status"] == "settled"


def test_previous_key_verifies_and_retired_key_does_not(client):
    user = create_user(gold=0)
    tx1 = buy_conversion(client, user)["tx_id"]
    tx2 = buy_conversion(client, user)["tx_id"]
    v1 = keyring.current("settlement")
    v2 = in_transaction(lambda s: keyring.rotate(s, "settlement"))
    assert v2.version == v1.version + 1

    resp = send(client, tx1, "settled", key=v1)  # previous: still verifies
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["settlement_status"] == "settled"

    in_transaction(lambda s: keyring.rotate(s, "settlement"))  # v1 retired, v2 previous
    before = state(user["id"], tx2)
    resp = send(client, tx2, "settled", key=v1)
    assert resp.status_code == 401
    assert resp.get_json()["error"]["details"]["reason"] == "unknown or retired key version"
    assert state(user["id"], tx2) == before
    assert send(client, tx2, "settled", key=v2).status_code == 200


# ------------------------------------------------------------------ the state machine


def test_settle_once_then_a_replayed_callback_changes_nothing(client):
    user = create_user(gold=250)
    bought = buy_conversion(client, user, gold=1000)
    tx = bought["tx_id"]
    assert balance(user["id"]) == 1250
    raw, headers = signed_callback(tx, "settled", callback_id="cb-1")

    first = post(client, raw, headers)
    assert first.status_code == 200, first.get_json()
    assert first.get_json() == {
        "tx_id": tx,
        "settlement_status": "settled",
        "applied": True,
        "replayed": False,
        "gold_delta": 0,
        "gold_balance": 1250,
        "reversed_gold": 0,
        "unrecovered_gold": 0,
    }
    after_first = state(user["id"], tx)
    assert after_first["purchase"]["settlement_status"] == "settled"
    assert after_first["purchase"]["settled_at"] is not None
    assert after_first["callbacks"] == [("cb-1", "settled", True)]
    assert after_first["outbox"] == 1

    again = post(client, raw, headers)  # the provider retries the very same delivery
    assert again.status_code == 200
    assert again.get_json()["replayed"] is True
    assert again.get_json()["applied"] is False
    assert again.get_json()["settlement_status"] == "settled"
    assert state(user["id"], tx) == after_first

    # another callback asking for the state the purchase already has: recorded, no effect
    other = send(client, tx, "settled", callback_id="cb-2")
    assert other.status_code == 200
    assert other.get_json()["applied"] is False and other.get_json()["replayed"] is False
    now = state(user["id"], tx)
    assert now["callbacks"] == [("cb-1", "settled", True), ("cb-2", "settled", False)]
    assert {k: v for k, v in now.items() if k != "callbacks"} == {
        k: v for k, v in after_first.items() if k != "callbacks"
    }

    events = settlement_events(tx)
    assert len(events) == 1
    assert events[0]["user_id"] == user["id"]
    assert events[0]["payload"] == {
        "tx_id": tx,
        "status": "settled",
        "previous_status": "pending",
        "gold_delta": 0,
        "gold_balance": 1250,
        "unrecovered_gold": 0,
    }


def test_a_callback_id_reused_for_another_status_is_a_409_duplicate(client):
    user = create_user(gold=0)
    tx = buy_conversion(client, user)["tx_id"]
    assert send(client, tx, "settled", callback_id="cb-x").status_code == 200
    before = state(user["id"], tx)
    resp = send(client, tx, "voided", callback_id="cb-x")
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "DUPLICATE"
    assert state(user["id"], tx) == before


def test_void_of_unspent_gold_reverses_all_of_it(client):
    user = create_user(gold=500)
    tx = buy_conversion(client, user, gold=1000)["tx_id"]
    assert balance(user["id"]) == 1500

    resp = send(client, tx, "voided", reason="points reversed")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {
        "tx_id": tx,
        "settlement_status": "voided",
        "applied": True,
        "replayed": False,
        "gold_delta": -1000,
        "gold_balance": 500,
        "reversed_gold": 1000,
        "unrecovered_gold": 0,
    }
    after = state(user["id"], tx)
    assert after["balance"] == 500 == ledger_sum(user["id"])
    assert after["ledger"][-1][1:] == (-1000, "shop_void", f"purchase:{tx}:void")
    assert after["purchase"]["reversed_gold"] == 1000
    assert after["purchase"]["unrecovered_gold"] == 0
    assert after["audits"] == 0  # nothing for support to chase
    [event] = settlement_events(tx)
    assert event["payload"]["gold_delta"] == -1000
    assert event["payload"]["gold_balance"] == 500

    # the void is final: a replay or a late "settled" changes nothing
    assert send(client, tx, "voided").get_json()["applied"] is False
    assert state(user["id"], tx) == {
        **after,
        "callbacks": state(user["id"], tx)["callbacks"],
    }


def test_void_after_the_gold_was_spent_takes_back_what_is_left_never_going_negative(client):
    user = create_user(gold=0)
    tx = buy_conversion(client, user, gold=1000)["tx_id"]
    buy_item(client, user, 700)
    assert balance(user["id"]) == 300
    unrecovered_before = metric("cc_shop_settlement_unrecovered_gold_total")

    resp = send(client, tx, "voided")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert (body["gold_delta"], body["gold_balance"]) == (-300, 0)
    assert (body["reversed_gold"], body["unrecovered_gold"]) == (300, 700)

    after = state(user["id"], tx)
    assert after["balance"] == 0 == ledger_sum(user["id"])
    assert after["ledger"][-1][1:] == (-300, "shop_void", f"purchase:{tx}:void")
    assert after["purchase"]["reversed_gold"] == 300
    assert after["purchase"]["unrecovered_gold"] == 700
    assert metric("cc_shop_settlement_unrecovered_gold_total") == unrecovered_before + 700
    audit = in_transaction(lambda s: s.execute(text("SELECT * FROM admin_audit")).mappings().one())
    assert audit["admin_id"] is None
    assert (audit["action"], audit["target_type"], audit["target_id"]) == (
        "shop.void_unrecovered",
        "shop_purchase",
        tx,
    )
    assert audit["payload"]["unrecovered_gold"] == 700
    assert audit["payload"]["user_id"] == user["id"]
    [event] = settlement_events(tx)
    assert event["payload"]["unrecovered_gold"] == 700
    assert event["payload"]["gold_balance"] == 0


def test_void_when_everything_was_spent_writes_no_ledger_row(client):
    user = create_user(gold=0)
    tx = buy_conversion(client, user, gold=1000)["tx_id"]
    buy_item(client, user, 1000)
    ledger_before = state(user["id"], tx)["ledger"]

    body = send(client, tx, "voided").get_json()
    assert (body["settlement_status"], body["gold_balance"]) == ("voided", 0)
    assert (body["reversed_gold"], body["unrecovered_gold"]) == (0, 1000)
    after = state(user["id"], tx)
    assert after["ledger"] == ledger_before
    assert after["balance"] == 0
    assert after["purchase"]["unrecovered_gold"] == 1000


def test_settled_then_voided_is_a_chargeback(client):
    user = create_user(gold=0)
    tx = buy_conversion(client, user, gold=800)["tx_id"]
    assert send(client, tx, "settled").get_json()["applied"] is True
    body = send(client, tx, "voided").get_json()
    assert body["applied"] is True
    assert (body["settlement_status"], body["gold_balance"], body["reversed_gold"]) == (
        "voided",
        0,
        800,
    )
    assert [e["payload"]["status"] for e in settlement_events(tx)] == ["settled", "voided"]
    assert settlement_events(tx)[1]["payload"]["previous_status"] == "settled"


def test_voided_then_settled_is_refused_and_recorded_as_not_applied(client):
    user = create_user(gold=0)
    tx = buy_conversion(client, user, gold=800)["tx_id"]
    assert send(client, tx, "voided").status_code == 200
    before = state(user["id"], tx)

    raw, headers = signed_callback(tx, "settled", callback_id="late-settle")
    resp = post(client, raw, headers)
    assert resp.status_code == 409
    error = resp.get_json()["error"]
    assert error["code"] == "INVALID_TRANSITION"
    assert error["details"]["settlement_status"] == "voided"
    after = state(user["id"], tx)
    assert ("late-settle", "settled", False) in after["callbacks"]
    assert {k: v for k, v in after.items() if k != "callbacks"} == {
        k: v for k, v in before.items() if k != "callbacks"
    }
    # the same delivery again: seen before, nothing changes
    again = post(client, raw, headers)
    assert again.status_code == 200 and again.get_json()["replayed"] is True
    assert state(user["id"], tx) == after


def test_concurrent_identical_callbacks_apply_once(app, client):
    user = create_user(gold=100)
    tx = buy_conversion(client, user, gold=1000)["tx_id"]
    raw, headers = signed_callback(tx, "voided", callback_id="cb-race")
    # and a second provider id for the same void, racing too
    raw2, headers2 = signed_callback(tx, "voided", callback_id="cb-race-2")
    answers: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(16)

    def deliver(i: int) -> None:
        try:
            c = app.test_client()
            start.wait()
            r = post(c, raw, headers) if i % 4 else post(c, raw2, headers2)
            assert r.status_code == 200, r.get_json()
            answers.append(r.get_json())
        except BaseException as exc:  # reported below, with the thread's answer lost
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sum(a["applied"] for a in answers) == 1
    assert all(a["settlement_status"] == "voided" for a in answers)
    after = state(user["id"], tx)
    assert after["balance"] == 100 == ledger_sum(user["id"])
    assert [r for r in after["ledger"] if r[2] == "shop_void"] == [
        (after["ledger"][-1][0], -1000, "shop_void", f"purchase:{tx}:void")
    ]
    assert after["outbox"] == 1
    assert sorted(c[0] for c in after["callbacks"]) == ["cb-race", "cb-race-2"]
    assert sum(c[2] for c in after["callbacks"]) == 1


# ------------------------------------------------------------------ refused inputs


def test_unknown_purchase_is_404_and_item_purchase_is_409(client):
    user = create_user(gold=1000)
    buy_item(client, user, 100)
    item_tx = in_transaction(
        lambda s: s.execute(text("SELECT id FROM shop_purchases")).scalar_one()
    )
    resp = send(client, item_tx + 1000, "settled")
    assert resp.status_code == 404
    assert resp.get_json()["error"]["code"] == "NOT_FOUND"
    resp = send(client, item_tx, "settled")
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "NOT_CONVERSION"
    assert (
        in_transaction(
            lambda s: s.execute(text("SELECT count(*) FROM shop_settlement_callbacks")).scalar_one()
        )
        == 0
    )


@pytest.mark.parametrize(
    "body",
    [
        {"callback_id": "c", "tx_id": 1, "status": "refunded"},
        {"callback_id": "", "tx_id": 1, "status": "settled"},
        {"callback_id": "c", "tx_id": "1", "status": "settled"},
        {"callback_id": "c", "tx_id": 0, "status": "settled"},
        {"tx_id": 1, "status": "settled"},
        {"callback_id": "c", "tx_id": 1, "status": "settled", "occurred_at": "yesterday"},
    ],
)
def test_a_signed_but_invalid_body_is_400_and_changes_nothing(client, body):
    user = create_user(gold=0)
    tx = buy_conversion(client, user)["tx_id"]
    body = {**body, "tx_id": tx} if body.get("tx_id") == 1 else body
    before = state(user["id"], tx)
    resp = post(client, *settlement_stub.signed(body))
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "VALIDATION_ERROR"
    assert state(user["id"], tx) == before


# ------------------------------------------------------------------ the provider stub


def test_stub_settles_pending_conversions_through_the_webhook(client):
    user = create_user(gold=0)
    txs = [buy_conversion(client, user, gold=100)["tx_id"] for _ in range(4)]
    buy_item(client, user, 50)  # not a conversion: never sent

    def via_test_client(raw: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        r = post(client, raw, headers)
        return r.status_code, r.get_json()

    summary = settlement_stub.settle_pending(via_test_client, void_every=2)
    assert (summary["sent"], summary["ok"], summary["settled"], summary["voided"]) == (4, 4, 2, 2)
    statuses = in_transaction(
        lambda s: dict(
            s.execute(
                text(
                    "SELECT id, settlement_status FROM shop_purchases WHERE category = 'conversion'"
                )
            ).all()
        )
    )
    assert statuses == {txs[0]: "settled", txs[1]: "voided", txs[2]: "settled", txs[3]: "voided"}
    assert balance(user["id"]) == 400 - 50 - 200 == ledger_sum(user["id"])
    # nothing pending any more: a second run sends nothing
    assert settlement_stub.settle_pending(via_test_client)["sent"] == 0


def test_manage_settle_pending_and_rotate_key_against_a_real_server(client, subprocess_env):
    user = create_user(gold=0)
    tx = buy_conversion(client, user, gold=300)["tx_id"]
    cmd = [sys.executable, "-m", "ccweb.manage"]
    rotated = subprocess.run(
        [*cmd, "rotate-key", "--purpose", "settlement"],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rotated.returncode == 0, rotated.stderr
    assert json.loads(rotated.stdout) == {"purpose": "settlement", "version": 2}
    proc, port = start_server(subprocess_env)
    try:
        run = subprocess.run(
            [*cmd, "settle-pending", "--url", f"http://127.0.0.1:{port}", "--void-every", "1"],
            env=subprocess_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        stop(proc)
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads(run.stdout)
    assert (summary["sent"], summary["voided"]) == (1, 1)
    assert summary["results"][0]["answer"]["reversed_gold"] == 300
    after = state(user["id"], tx)
    assert after["purchase"]["settlement_status"] == "voided"
    assert after["balance"] == 0
