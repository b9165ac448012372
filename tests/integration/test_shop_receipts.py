"""Purchase receipts as a player or support checks them (``POST /api/shop/receipts/verify``),
against the real database: a tampered receipt, hash or signature fails; key rotation keeps
the previous version verifying and retires the one before it; new purchases are signed
with the new version at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ccweb.db import in_transaction
from ccweb.shop import keyring, receipts
from ccweb.shop.receipt_routes import bp as receipts_bp
from tests.factories import auth_headers, create_product, create_user

VERIFY = "/api/shop/receipts/verify"


@pytest.fixture(autouse=True)
def fresh_keys() -> Iterator[None]:
    """Signing keys are emptied with the tables between tests; forget the cached ones."""
    keyring.forget()
    yield
    keyring.forget()


@pytest.fixture(scope="module")
def receipts_app(settings: Any) -> Any:
    """The application, with the receipts blueprint even before ``create_app`` registers
    it (then this is just another instance of the same app)."""
    from ccweb import create_app

    application = create_app(settings)
    if receipts_bp.name not in application.blueprints:
        application.register_blueprint(receipts_bp)
    return application


@pytest.fixture
def rclient(receipts_app: Any) -> Any:
    return receipts_app.test_client()


@pytest.fixture
def player(rclient: Any) -> dict[str, Any]:
    user = create_user(gold=10_000)
    return {**user, "headers": auth_headers(rclient, user)}


def buy(client: Any, player: dict[str, Any], **product: Any) -> dict[str, Any]:
    fields = {"category": "package", "price_gold": 100, "gold_amount": 20, **product}
    pid = create_product(**fields)["id"]
    resp = client.post(
        "/api/shop/purchase",
        json={"product_id": pid, "idempotency_key": uuid.uuid4().hex},
        headers=player["headers"],
    )
    assert resp.status_code == 200, resp.get_json()
    receipt: dict[str, Any] = resp.get_json()["receipt"]
    return receipt


def check(client: Any, player: dict[str, Any], issued: dict[str, Any], **override: Any) -> Any:
    """The verdict on ``issued`` (a purchase's ``receipt``), with fields overridden."""
    body = {
        "receipt": issued["document"],
        "integrity_hash": issued["integrity_hash"],
        "signature": issued["signature"],
        "signature_version": issued["signature_version"],
        **override,
    }
    resp = client.post(VERIFY, json=body, headers=player["headers"])
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


VALID_CURRENT = {"valid": True, "integrity_ok": True, "signature_ok": True, "key_state": "current"}


def test_a_purchase_receipt_verifies_as_issued_and_as_listed(rclient, player):
    receipt = buy(rclient, player)
    assert check(rclient, player, receipt) == VALID_CURRENT
    # the stored copy (JSONB hands keys back in another order) verifies the same
    listed = rclient.get("/api/shop/purchases", headers=player["headers"]).get_json()
    [item] = listed["items"]
    assert check(rclient, player, item["receipt"]) == VALID_CURRENT
    assert receipt["integrity_hash"] == receipts.integrity_hash(item["receipt"]["document"])


def test_changing_any_receipt_field_fails_integrity(rclient, player):
    receipt = buy(rclient, player, category="conversion", price_gold=0, points_price=50)
    document = receipt["document"]
    assert document["category"] == "conversion"
    for field, value in document.items():
        forged = dict(document)
        if isinstance(value, bool) or value is None:
            forged[field] = not value
        elif isinstance(value, int):
            forged[field] = value + 1
        elif isinstance(value, str):
            forged[field] = value + "x"
        else:
            forged[field] = [*value, {"code": "gem", "quantity": 1}]
        verdict = check(rclient, player, receipt, receipt=forged)
        assert verdict["valid"] is False, field
        assert verdict["integrity_ok"] is False, field
        assert verdict["signature_ok"] is True  # the signature covers the original hash


def test_a_changed_hash_or_signature_fails(rclient, player):
    receipt = buy(rclient, player)
    forged_doc = {**receipt["document"], "gold_amount": 1_000_000}
    # a forger recomputes the hash of the changed receipt: the signature no longer matches
    rehashed = check(
        rclient,
        player,
        receipt,
        receipt=forged_doc,
        integrity_hash=receipts.integrity_hash(forged_doc),
    )
    assert rehashed == {
        "valid": False,
        "integrity_ok": True,
        "signature_ok": False,
        "key_state": "current",
    }
    flipped_hash = receipt["integrity_hash"][:-1] + (
        "0" if receipt["integrity_hash"][-1] != "0" else "1"
    )
    verdict = check(rclient, player, receipt, integrity_hash=flipped_hash)
    assert (verdict["valid"], verdict["integrity_ok"], verdict["signature_ok"]) == (
        False,
        False,
        False,
    )
    flipped_sig = receipt["signature"][:-1] + ("0" if receipt["signature"][-1] != "0" else "1")
    verdict = check(rclient, player, receipt, signature=flipped_sig)
    assert (verdict["valid"], verdict["integrity_ok"], verdict["signature_ok"]) == (
        False,
        True,
        False,
    )
    # not hex at all (non-ASCII too): an invalid verdict, not a server error
    for junk in ("ünïcode-signature", "x"):
        assert check(rclient, player, receipt, signature=junk)["valid"] is False
    # a version that never existed
    verdict = check(rclient, player, receipt, signature_version=receipt["signature_version"] + 7)
    assert verdict == {
        "valid": False,
        "integrity_ok": True,
        "signature_ok": False,
        "key_state": None,
    }


def test_rotation_keeps_the_previous_key_verifying_and_retires_the_one_before(rclient, player):
    old = buy(rclient, player)
    assert old["signature_version"] == 1

    v2 = in_transaction(lambda s: keyring.rotate(s, "receipt"))
    assert v2.version == 2
    assert check(rclient, player, old) == {**VALID_CURRENT, "key_state": "previous"}
    new = buy(rclient, player)
    assert new["signature_version"] == 2  # signed with the new key at once
    assert check(rclient, player, new) == VALID_CURRENT

    in_transaction(lambda s: keyring.rotate(s, "receipt"))
    assert check(rclient, player, old) == {
        "valid": False,
        "integrity_ok": True,
        "signature_ok": False,
        "key_state": None,
    }
    assert check(rclient, player, new) == {**VALID_CURRENT, "key_state": "previous"}
    assert buy(rclient, player)["signature_version"] == 3


def test_rotation_does_not_touch_the_other_ring(rclient, player):
    receipt_key = keyring.current("receipt")
    settlement_key = keyring.current("settlement")
    in_transaction(lambda s: keyring.rotate(s, "settlement"))
    assert keyring.verifying("receipt", receipt_key.version) is not None
    assert keyring.current("receipt") == receipt_key
    assert keyring.current("settlement").version == settlement_key.version + 1


def test_concurrent_rotations_make_consecutive_versions(rclient, player):
    import threading

    keyring.current("receipt")  # version 1 exists
    versions: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def rotate() -> None:
        try:
            start.wait()
            versions.append(in_transaction(lambda s: keyring.rotate(s, "receipt")).version)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=rotate) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(versions) == [2, 3, 4, 5, 6, 7]
    assert keyring.current("receipt").version == 7
    assert keyring.verifying("receipt", 6) is not None
    assert keyring.verifying("receipt", 5) is None


def test_verify_needs_a_player_and_a_well_formed_body(rclient, player):
    receipt = buy(rclient, player)
    body = {
        "receipt": receipt["document"],
        "integrity_hash": receipt["integrity_hash"],
        "signature": receipt["signature"],
        "signature_version": receipt["signature_version"],
    }
    assert rclient.post(VERIFY, json=body).status_code == 401
    for bad in (
        {**body, "signature_version": "1"},
        {**body, "signature_version": 2**31},
        {**body, "receipt": "not an object"},
        {k: v for k, v in body.items() if k != "signature"},
    ):
        resp = rclient.post(VERIFY, json=bad, headers=player["headers"])
        assert resp.status_code == 400, bad
        assert resp.get_json()["error"]["code"] == "VALIDATION_ERROR"
