"""Pure parts of receipts and settlement signatures: the canonical form, the integrity hash,
the callback HMAC — computed here independently from their definitions, so a change of
format (which would break every receipt and provider integration out there) fails."""

from __future__ import annotations

import hashlib
import hmac
import json

from ccweb.shop import receipts, settlement
from realtime.messages import to_messages

RECEIPT = {
    "tx_id": 42,
    "user_id": 7,
    "product_id": 3,
    "sku": "points_to_gold_1k",
    "category": "conversion",
    "quantity": 1,
    "price_gold": 0,
    "points_price": 100,
    "gold_amount": 1000,
    "gold_delta": 1000,
    "items": [],
    "idempotency_key": "k-1",
    "issued_at": "2026-12-01T10:00:00Z",
}


def test_canonical_form_is_sorted_compact_utf8_json() -> None:
    doc = {"b": 1, "a": {"z": "é", "y": [2, 1]}}
    assert receipts.canonical(doc) == '{"a":{"y":[2,1],"z":"é"},"b":1}'.encode()
    # key order of the input does not matter (JSONB hands keys back in its own order)
    assert receipts.canonical(dict(reversed(list(RECEIPT.items())))) == receipts.canonical(RECEIPT)


def test_integrity_hash_is_sha256_of_the_canonical_form() -> None:
    expected = hashlib.sha256(
        json.dumps(RECEIPT, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    assert receipts.integrity_hash(RECEIPT) == expected


def test_every_field_change_changes_the_hash() -> None:
    base = receipts.integrity_hash(RECEIPT)
    for field, value in RECEIPT.items():
        changed = dict(RECEIPT)
        changed[field] = value + 1 if isinstance(value, int) else f"{value}x"
        assert receipts.integrity_hash(changed) != base, field
    extra = {**RECEIPT, "bonus": 1}
    assert receipts.integrity_hash(extra) != base
    missing = {k: v for k, v in RECEIPT.items() if k != "sku"}
    assert receipts.integrity_hash(missing) != base


def test_callback_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    secret, ts, body = b"s" * 32, 1_700_000_000, b'{"callback_id":"c1","tx_id":1}'
    expected = hmac.new(secret, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert settlement.sign(secret, ts, body) == expected
    assert settlement.signature_header(3, secret, ts, body) == f"v3={expected}"
    # the timestamp is covered: the same body at another time has another signature
    assert settlement.sign(secret, ts + 1, body) != expected
    assert settlement.sign(secret, ts, body + b" ") != expected


def test_settlement_event_becomes_a_purchase_update_and_profile_push() -> None:
    envelope = {
        "event_type": "shop.settlement",
        "user_id": 7,
        "ts": "2026-12-01T10:00:00Z",
        "payload": {
            "tx_id": 42,
            "status": "voided",
            "previous_status": "settled",
            "gold_delta": -600,
            "gold_balance": 0,
            "unrecovered_gold": 400,
        },
    }
    pushes = [json.loads(m) for m in to_messages(envelope)]
    assert [p["type"] for p in pushes] == ["purchase_update", "profile_update"]
    assert pushes[0]["data"] == {
        "tx_id": 42,
        "settlement_status": "voided",
        "gold_delta": -600,
        "gold_balance": 0,
        "unrecovered_gold": 400,
    }
    assert pushes[1]["data"]["gold_balance"] == 0
    # a settle moves no gold: no profile push
    envelope["payload"] = {**envelope["payload"], "status": "settled", "gold_delta": 0}
    assert [json.loads(m)["type"] for m in to_messages(envelope)] == ["purchase_update"]
