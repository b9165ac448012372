"""Admin gold adjustments (through the ledger, audited, idempotent) and the audit log."""

from __future__ import annotations

import hashlib

from sqlalchemy import text

from ccweb.db import in_transaction
from ccweb.wallet import ledger
from tests.factories import auth_headers, balance, create_user, ledger_sum


def rows(sql: str, **params):
    return in_transaction(lambda s: s.execute(text(sql), params).mappings().all())


def admin_headers(client):
    return auth_headers(client, create_user(is_admin=True, gold=0), admin=True)


def test_adjust_credits_and_debits_through_ledger_with_audit_and_event(client):
    headers = admin_headers(client)
    player = create_user(gold=500)
    r = client.post(
        f"/api/admin/users/{player['id']}/gold",
        json={"delta": 250, "reason": "compensation"},
        headers=headers,
    )
    assert r.status_code == 200
    assert r.get_json()["gold_balance"] == 750
    r = client.post(
        f"/api/admin/users/{player['id']}/gold",
        json={"delta": -700, "reason": "chargeback"},
        headers=headers,
    )
    assert r.get_json()["gold_balance"] == 50
    assert balance(player["id"]) == 50 == ledger_sum(player["id"])
    audit = client.get("/api/admin/audit", headers=headers).get_json()["items"]
    assert [(a["action"], a["payload"]["delta"]) for a in audit] == [
        ("user.gold_adjust", -700),
        ("user.gold_adjust", 250),
    ]
    assert all(a["request_id"] for a in audit)
    # ids are integers (SPEC §2); a user has an id, not a key
    assert {(a["target_type"], a["target_id"], a["target_key"]) for a in audit} == {
        ("user", player["id"], None)
    }
    events = rows("SELECT envelope FROM outbox WHERE event_type = 'admin.adjust' ORDER BY id")
    assert [e["envelope"]["payload"]["delta"] for e in events] == [250, -700]


def test_adjust_below_zero_is_409_and_changes_nothing(client):
    headers = admin_headers(client)
    player = create_user(gold=100)
    r = client.post(
        f"/api/admin/users/{player['id']}/gold",
        json={"delta": -101, "reason": "too much"},
        headers=headers,
    )
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "INSUFFICIENT_GOLD"
    assert balance(player["id"]) == 100
    assert rows("SELECT * FROM admin_audit") == []
    assert rows("SELECT * FROM outbox WHERE event_type = 'admin.adjust'") == []


def test_adjust_bad_input_and_unknown_user(client):
    headers = admin_headers(client)
    player = create_user(gold=100)
    for body in (
        {"delta": 0, "reason": "zero"},
        {"delta": "5", "reason": "string"},
        {"delta": 1.5, "reason": "float"},
        {"delta": 5},
        {"delta": 5, "reason": ""},
    ):
        r = client.post(f"/api/admin/users/{player['id']}/gold", json=body, headers=headers)
        assert r.status_code == 400, body
        assert r.get_json()["error"]["code"] == "VALIDATION_ERROR"
    r = client.post(
        "/api/admin/users/999999/gold", json={"delta": 5, "reason": "ghost"}, headers=headers
    )
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "NOT_FOUND"
    assert balance(player["id"]) == 100 and rows("SELECT * FROM admin_audit") == []


def test_idempotency_key_replays_and_never_applies_twice(client):
    headers = {**admin_headers(client), "X-Idempotency-Key": "adj-1"}
    player = create_user(gold=100)
    url = f"/api/admin/users/{player['id']}/gold"
    first = client.post(url, json={"delta": 40, "reason": "bonus"}, headers=headers)
    again = client.post(url, json={"delta": 40, "reason": "bonus"}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replay") == "true"
    assert "Idempotent-Replay" not in first.headers
    assert again.get_json() == first.get_json()
    assert balance(player["id"]) == 140
    other = client.post(url, json={"delta": 41, "reason": "bonus"}, headers=headers)
    assert other.status_code == 409 and other.get_json()["error"]["code"] == "DUPLICATE"
    assert balance(player["id"]) == 140 and len(rows("SELECT * FROM admin_audit")) == 1


def test_failed_request_releases_its_idempotency_key(client):
    """A 409 changed nothing, so the same key may be used again once it can succeed."""
    headers = {**admin_headers(client), "X-Idempotency-Key": "adj-2"}
    player = create_user(gold=10)
    url = f"/api/admin/users/{player['id']}/gold"
    assert (
        client.post(url, json={"delta": -20, "reason": "debit"}, headers=headers).status_code == 409
    )
    in_transaction(
        lambda s: ledger.apply(
            s, user_id=player["id"], delta=15, source_type="test", idempotency_key="topup"
        )
    )
    ok = client.post(url, json={"delta": -20, "reason": "debit"}, headers=headers)
    assert ok.status_code == 200 and ok.get_json()["gold_balance"] == 5


def test_in_progress_key_is_409(client):
    """A key whose first request is still running (marker without a stored response)."""
    admin = create_user(is_admin=True, gold=0)
    headers = {
        **auth_headers(client, admin, admin=True),
        "X-Idempotency-Key": "busy",
        "Content-Type": "application/json",
    }
    player = create_user(gold=10)
    url = f"/api/admin/users/{player['id']}/gold"
    body = b'{"delta": 5, "reason": "bonus"}'
    fingerprint = hashlib.sha256(b"admin.adjust_gold" + url.encode() + body).hexdigest()
    in_transaction(
        lambda s: s.execute(
            text(
                "INSERT INTO idempotency_keys (user_id, key, endpoint, request_hash)"
                " VALUES (:u, 'busy', 'admin.adjust_gold', :h)"
            ),
            {"u": admin["id"], "h": fingerprint},
        )
    )
    r = client.post(url, data=body, headers=headers)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "IN_PROGRESS"
    assert balance(player["id"]) == 10


def test_user_detail_shows_ledger_sum(client):
    headers = admin_headers(client)
    player = create_user(gold=321)
    detail = client.get(f"/api/admin/users/{player['id']}", headers=headers).get_json()
    assert detail["gold_balance"] == detail["ledger_sum"] == 321
    assert detail["recent_ledger"][0]["delta_gold"] == 321
    assert client.get("/api/admin/users/424242", headers=headers).status_code == 404


def test_flags_put_is_audited_and_visible_to_clients(client):
    headers = admin_headers(client)
    r = client.put(
        "/api/admin/flags/ui.new_lobby",
        json={"value": {"v": 2}, "client_visible": True},
        headers=headers,
    )
    assert r.status_code == 200
    client.put("/api/admin/flags/ops.secret", json={"value": 1}, headers=headers)
    bad = client.put("/api/admin/flags/BAD KEY", json={"value": 1}, headers=headers)
    assert bad.status_code == 400
    player_headers = auth_headers(client, create_user())
    seen = client.get("/api/flags", headers=player_headers).get_json()
    assert seen["ui.new_lobby"] == {"v": 2} and "ops.secret" not in seen
    actions = [a["action"] for a in rows("SELECT action FROM admin_audit ORDER BY id")]
    assert actions == ["flag.put", "flag.put"]
    # a flag is keyed by text: the key is the audit entry's target_key, target_id is null
    audit = client.get("/api/admin/audit", headers=headers).get_json()["items"]
    assert [(a["target_type"], a["target_id"], a["target_key"]) for a in audit] == [
        ("flag", None, "ops.secret"),
        ("flag", None, "ui.new_lobby"),
    ]
