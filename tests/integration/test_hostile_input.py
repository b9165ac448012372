"""Inputs a fuzzer found to cause 500s: NUL characters (PostgreSQL text/JSONB cannot hold
U+0000) and integers beyond bigint. Each must be a 4xx in the SPEC shape with nothing
stored."""

from __future__ import annotations

from sqlalchemy import text

from ccweb.db import in_transaction
from tests.factories import auth_headers, create_user

BIG = 2**63


def count(table: str) -> int:
    return int(in_transaction(lambda s: s.execute(text(f"SELECT count(*) FROM {table}")).scalar()))


def test_nul_characters_in_bodies_are_400(client, seeded):
    headers = auth_headers(client, create_user())
    r = client.post(
        "/api/actions", json={"action_type": "x", "context": {"k": "a\x00b"}}, headers=headers
    )
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "VALIDATION_ERROR"
    r = client.post(
        "/api/actions/bulk",
        json={"actions": [{"action_type": "x", "context": {"a\x00": 1}}]},
        headers=headers,
    )
    assert r.status_code == 400
    r = client.post(
        "/api/auth/signup",
        json={
            "site_id": "nul_user",
            "nickname": "ni\x00ck",
            "password": "password-1",
            "invite_code": "5858",
        },
    )
    assert r.status_code == 400
    assert count("user_actions") == 0
    assert (
        in_transaction(
            lambda s: s.execute(
                text("SELECT count(*) FROM users WHERE site_id = 'nul_user'")
            ).scalar()
        )
        == 0
    )
    # an escaped backslash followed by "u0000" is an ordinary string, not a NUL
    ok = client.post(
        "/api/actions",
        data='{"action_type": "x", "context": {"k": "\\\\u0000"}}',
        content_type="application/json",
        headers=headers,
    )
    assert ok.status_code == 201 and ok.get_json()["context"] == {"k": "\\u0000"}


def test_nul_in_query_and_idempotency_key_is_400(client):
    admin = auth_headers(client, create_user(is_admin=True), admin=True)
    assert client.get("/api/admin/users?q=a%00b", headers=admin).status_code == 400
    player = create_user(gold=100)
    r = client.post(
        f"/api/admin/users/{player['id']}/gold",
        json={"delta": 1, "reason": "abc"},
        headers={**admin, "X-Idempotency-Key": "k\x00"},
    )
    assert r.status_code == 400 and count("admin_audit") == 0


def test_ids_beyond_bigint_are_4xx(client):
    admin = auth_headers(client, create_user(is_admin=True), admin=True)
    player = create_user(gold=1000)
    headers = auth_headers(client, player)
    assert client.get(f"/api/admin/users/{BIG}", headers=admin).status_code == 404
    assert (
        client.post(
            f"/api/admin/users/{BIG}/gold", json={"delta": 1, "reason": "abc"}, headers=admin
        ).status_code
        == 404
    )
    assert client.post(f"/api/games/sessions/{BIG}/end", headers=headers).status_code == 404
    assert client.get(f"/api/rewards/history?before_id={BIG}", headers=headers).status_code == 400
    assert client.get(f"/api/admin/audit?before_id={BIG}", headers=admin).status_code == 400
    r = client.post("/api/games/slot/spin", json={"bet": 10, "session_id": BIG}, headers=headers)
    assert r.status_code == 400 and count("game_rounds") == 0
