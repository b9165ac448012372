"""Auth behaviours of SPEC §3 against real PostgreSQL and Redis."""

from __future__ import annotations

import uuid

import jwt
import pytest
from sqlalchemy import text

from ccweb.auth import tokens as auth_tokens
from ccweb.config import get_settings
from ccweb.db import in_transaction
from tests.factories import auth_headers, create_user, login

SIGNUP = {
    "site_id": "newbie_1",
    "nickname": "Newbie",
    "password": "longpassword",
    "invite_code": "5858",
}


def count(sql: str) -> int:
    return int(in_transaction(lambda s: s.execute(text(sql)).scalar()))


def error_code(resp) -> str:
    return resp.get_json()["error"]["code"]


def test_signup_creates_player_with_1000_gold_explained_by_ledger(client, seeded):
    """Signup → 201 with tokens and user; 1000 gold that is one signup ledger row."""
    resp = client.post("/api/auth/signup", json=SIGNUP)
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    assert body["access_token"] and body["refresh_token"]
    user = body["user"]
    assert user["gold_balance"] == 1000 and user["level"] == 1 and user["tier"] == "STANDARD"
    assert user["site_id"] == "newbie_1" and user["created_at"].endswith("Z")
    history = client.get(
        "/api/rewards/history", headers={"Authorization": f"Bearer {body['access_token']}"}
    ).get_json()
    assert [(r["source_type"], r["delta_gold"], r["balance_after"]) for r in history["items"]] == [
        ("signup", 1000, 1000)
    ]
    assert count("SELECT count(*) FROM outbox WHERE event_type = 'auth.signup'") == 1


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"site_id": "ab"}, "site_id"),
        ({"site_id": "has space"}, "site_id"),
        ({"site_id": "x" * 33}, "site_id"),
        ({"nickname": "a"}, "nickname"),
        ({"nickname": "n" * 21}, "nickname"),
        ({"password": "short"}, "password"),
        ({"site_id": 12345}, "site_id"),
        ({"invite_code": "nope"}, "invite_code"),
        ({"invite_code": None}, "invite_code"),
    ],
)
def test_signup_rejects_bad_input_and_creates_nothing(client, seeded, patch, field):
    """Bad input → 400 VALIDATION_ERROR naming the field; no user, no ledger, no outbox."""
    users_before = count("SELECT count(*) FROM users")
    resp = client.post("/api/auth/signup", json={**SIGNUP, **patch})
    assert resp.status_code == 400
    err = resp.get_json()["error"]
    assert err["code"] == "VALIDATION_ERROR"
    assert field in {f["field"] for f in err["details"]["fields"]}
    assert count("SELECT count(*) FROM users") == users_before
    assert count("SELECT count(*) FROM outbox") == 0


def test_signup_duplicates_are_409(client, seeded):
    assert client.post("/api/auth/signup", json=SIGNUP).status_code == 201
    same_site = client.post("/api/auth/signup", json={**SIGNUP, "nickname": "Other"})
    assert same_site.status_code == 409 and error_code(same_site) == "DUPLICATE"
    assert same_site.get_json()["error"]["details"]["field"] == "site_id"
    same_nick = client.post("/api/auth/signup", json={**SIGNUP, "site_id": "other_1"})
    assert same_nick.status_code == 409 and same_nick.get_json()["error"]["details"]["field"] == (
        "nickname"
    )
    assert count("SELECT count(*) FROM users WHERE site_id IN ('newbie_1', 'other_1')") == 1


def test_invite_code_usage_limit(client, seeded):
    """A code with max_uses=1 admits one player; the failed second signup does not
    consume anything."""
    admin = auth_headers(client, {"site_id": "admin", "password": "admin-pass-1234"}, admin=True)
    made = client.post(
        "/api/admin/invite-codes", json={"code": "ONCE1", "max_uses": 1}, headers=admin
    )
    assert made.status_code == 201
    first = client.post("/api/auth/signup", json={**SIGNUP, "invite_code": "ONCE1"})
    assert first.status_code == 201
    second = client.post(
        "/api/auth/signup",
        json={**SIGNUP, "site_id": "p2", "nickname": "P2", "invite_code": "ONCE1"},
    )
    assert second.status_code == 400
    assert count("SELECT uses FROM invite_codes WHERE code = 'ONCE1'") == 1


def test_invite_flag_off_allows_signup_without_code(client, seeded):
    admin = auth_headers(client, {"site_id": "admin", "password": "admin-pass-1234"}, admin=True)
    resp = client.put(
        "/api/admin/flags/signup.invite_required",
        json={"value": False, "client_visible": True},
        headers=admin,
    )
    assert resp.status_code == 200 and resp.get_json()["value"] is False
    ok = client.post("/api/auth/signup", json={**SIGNUP, "invite_code": None})
    assert ok.status_code == 201


def test_login_and_wrong_password(client):
    user = create_user()
    ok = client.post(
        "/api/auth/login", json={"site_id": user["site_id"], "password": user["password"]}
    )
    assert ok.status_code == 200 and ok.get_json()["user"]["id"] == user["id"]
    bad = client.post("/api/auth/login", json={"site_id": user["site_id"], "password": "wrong!!!"})
    assert bad.status_code == 401 and error_code(bad) == "INVALID_CREDENTIALS"
    ghost = client.post("/api/auth/login", json={"site_id": "ghost", "password": "whatever1"})
    assert ghost.status_code == 401 and error_code(ghost) == "INVALID_CREDENTIALS"


def test_lockout_after_five_failures_until_window_passes(client, clock):
    """5 failures → even the right password gets 429 LOGIN_LOCKED with Retry-After
    counting down to the end of the 10-minute window; once the window has moved past
    the failures the right password works again."""
    window = get_settings().login_lock_window_s
    user = create_user()
    creds = {"site_id": user["site_id"], "password": user["password"]}
    for _ in range(5):
        r = client.post("/api/auth/login", json={**creds, "password": "wrong-pass"})
        assert r.status_code == 401
    locked = client.post("/api/auth/login", json=creds)
    assert locked.status_code == 429 and error_code(locked) == "LOGIN_LOCKED"
    assert int(locked.headers["Retry-After"]) == window + 1
    clock.advance(window - 30)
    still = client.post("/api/auth/login", json=creds)
    assert still.status_code == 429 and int(still.headers["Retry-After"]) == 31
    clock.advance(31)
    assert client.post("/api/auth/login", json=creds).status_code == 200


def test_lockout_is_per_site_id_and_success_resets(client):
    a, b = create_user(), create_user()
    for _ in range(4):
        client.post("/api/auth/login", json={"site_id": a["site_id"], "password": "wrong-pass"})
    login(client, a)  # success clears the counter
    for _ in range(4):
        client.post("/api/auth/login", json={"site_id": a["site_id"], "password": "wrong-pass"})
    assert (
        client.post(
            "/api/auth/login", json={"site_id": a["site_id"], "password": a["password"]}
        ).status_code
        == 200
    )
    for _ in range(5):
        client.post("/api/auth/login", json={"site_id": b["site_id"], "password": "wrong-pass"})
    assert (
        client.post(
            "/api/auth/login", json={"site_id": a["site_id"], "password": a["password"]}
        ).status_code
        == 200
    )
    assert (
        client.post(
            "/api/auth/login", json={"site_id": b["site_id"], "password": b["password"]}
        ).status_code
        == 429
    )


def test_me_requires_a_valid_access_token(client):
    user = create_user(gold=250)
    tokens = login(client, user)
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200
    assert set(me.get_json()) == {
        "id",
        "site_id",
        "nickname",
        "is_admin",
        "tier",
        "level",
        "experience_points",
        "gold_balance",
        "created_at",
    }
    assert me.get_json()["gold_balance"] == 250
    assert error_code(client.get("/api/auth/me")) == "UNAUTHORIZED"
    assert client.get("/api/auth/me", headers={"Authorization": "Bearer nonsense"}).status_code == (
        401
    )
    refresh_as_access = client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {tokens['refresh_token']}"}
    )
    assert refresh_as_access.status_code == 401


def test_expired_and_forged_tokens(client, clock):
    user = create_user()
    now = int(clock.time())
    claims = {
        "sub": str(user["id"]),
        "jti": "x1",
        "fam": "f1",
        "typ": "access",
        "iat": now - 1000,
        "exp": now - 10,
    }
    expired = jwt.encode(claims, get_settings().jwt_secret, algorithm="HS256")
    r = client.get("/api/auth/me", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and error_code(r) == "TOKEN_EXPIRED"
    forged = jwt.encode(
        {**claims, "exp": now + 100}, "not-the-secret-but-long-enough-for-hs256", algorithm="HS256"
    )
    r = client.get("/api/auth/me", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and error_code(r) == "UNAUTHORIZED"


def test_refresh_rotates_and_reuse_revokes_the_family(client):
    """Rotation gives a new pair and kills the old refresh token; presenting the old one
    again → 401 TOKEN_REVOKED and every token of the family (the newest refresh token and
    the access tokens) stops working."""
    user = create_user()
    first = login(client, user)
    second = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    pair = second.get_json()
    assert pair["refresh_token"] != first["refresh_token"]
    assert (
        client.get(
            "/api/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
        ).status_code
        == 200
    )

    reuse = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401 and error_code(reuse) == "TOKEN_REVOKED"
    assert reuse.get_json()["error"]["details"] == {"reason": "reuse_detected"}
    # the newest token was never misused: its session was ended by the theft response
    newest = client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert newest.status_code == 401 and error_code(newest) == "TOKEN_REVOKED"
    assert newest.get_json()["error"]["details"] == {"reason": "session_ended"}
    # the spent token stays a reuse, however often it comes back
    again = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert again.get_json()["error"]["details"] == {"reason": "reuse_detected"}
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.status_code == 401 and error_code(me) == "TOKEN_REVOKED"
    # another login (another family) is unaffected
    other = login(client, user)
    assert (
        client.get(
            "/api/auth/me", headers={"Authorization": f"Bearer {other['access_token']}"}
        ).status_code
        == 200
    )


def test_refresh_rejects_garbage(client):
    r = client.post("/api/auth/refresh", json={"refresh_token": "x" * 40})
    assert r.status_code == 401
    r = client.post("/api/auth/refresh", json={})
    assert r.status_code == 400 and error_code(r) == "VALIDATION_ERROR"


def test_logout_revokes_access_token_and_refresh_family(client):
    """After logout the refresh token is refused as a session that ended — not as a
    reuse (nothing was stolen, so nothing to report as theft)."""
    user = create_user()
    tokens = login(client, user)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.post("/api/auth/logout", headers=headers).status_code == 204
    me = client.get("/api/auth/me", headers=headers)
    assert me.status_code == 401 and error_code(me) == "TOKEN_REVOKED"
    r = client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401 and error_code(r) == "TOKEN_REVOKED"
    err = r.get_json()["error"]
    assert err["details"] == {"reason": "session_ended"}
    assert "ended" in err["message"] and "reuse" not in err["message"]


def test_admin_login_and_admin_guard(client, seeded):
    player = create_user()
    r = client.post(
        "/api/auth/admin/login", json={"site_id": player["site_id"], "password": player["password"]}
    )
    assert r.status_code == 403 and error_code(r) == "FORBIDDEN"
    player_headers = auth_headers(client, player)
    assert client.get("/api/admin/users", headers=player_headers).status_code == 403
    admin = auth_headers(client, {"site_id": "admin", "password": "admin-pass-1234"}, admin=True)
    listing = client.get("/api/admin/users?q=demo", headers=admin)
    assert listing.status_code == 200
    assert {u["site_id"] for u in listing.get_json()["items"]} == {"demo1", "demo2", "demo3"}


def test_demoted_admin_loses_access_immediately(client):
    """Admin status is read from the database, not trusted from the token."""
    boss = create_user(is_admin=True)
    headers = auth_headers(client, boss, admin=True)
    assert client.get("/api/admin/audit", headers=headers).status_code == 200
    in_transaction(
        lambda s: s.execute(
            text("UPDATE users SET is_admin = false WHERE id = :u"), {"u": boss["id"]}
        )
    )
    assert client.get("/api/admin/audit", headers=headers).status_code == 403


def test_a_remembered_token_still_expires_and_is_still_revocable(client, clock):
    """Verified tokens are remembered per process (``tokens._VERIFIED``); a remembered
    token must still expire on time and still be refused after logout."""
    user = create_user()
    now = clock.time()
    claims = {
        "sub": str(user["id"]),
        "jti": "remembered-1",
        "fam": uuid.uuid4().hex,
        "typ": "access",
        "iat": int(now),
        "exp": int(now) + 5,
    }
    token = jwt.encode(claims, get_settings().jwt_secret, algorithm="HS256")
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/auth/me", headers=auth).status_code == 200
    assert any(k[2] == token for k in auth_tokens._VERIFIED)  # served from memory next
    assert client.get("/api/auth/me", headers=auth).status_code == 200
    clock.advance(6)
    r = client.get("/api/auth/me", headers=auth)
    assert r.status_code == 401 and error_code(r) == "TOKEN_EXPIRED"
    clock.advance(-6)
    # the same token again, fresh, then revoked: the remembered copy must not outlive it
    second = jwt.encode({**claims, "jti": "remembered-2"}, get_settings().jwt_secret)
    auth = {"Authorization": f"Bearer {second}"}
    assert client.get("/api/auth/me", headers=auth).status_code == 200
    assert client.post("/api/auth/logout", headers=auth).status_code == 204
    r = client.get("/api/auth/me", headers=auth)
    assert r.status_code == 401 and error_code(r) == "TOKEN_REVOKED"


def test_token_lifetimes_are_judged_by_the_application_clock(client, clock):
    """Access tokens die after 15 minutes and refresh tokens after 14 days of the
    application's clock, also on first sight (PyJWT's own check would read the system
    clock and let a token that the application considers expired through)."""
    s = get_settings()
    tokens = login(client, create_user())
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    clock.advance(s.access_token_ttl_s - 1)
    assert client.get("/api/auth/me", headers=auth).status_code == 200
    clock.advance(1)
    r = client.get("/api/auth/me", headers=auth)
    assert r.status_code == 401 and error_code(r) == "TOKEN_EXPIRED"
    fresh = client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert fresh.status_code == 200  # 15 minutes in, the refresh token is still good
    pair = fresh.get_json()
    never_seen = {"Authorization": f"Bearer {pair['access_token']}"}
    clock.advance(s.access_token_ttl_s)
    r = client.get("/api/auth/me", headers=never_seen)  # first decode is already too late
    assert r.status_code == 401 and error_code(r) == "TOKEN_EXPIRED"
    clock.advance(s.refresh_token_ttl_s)
    r = client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 401 and error_code(r) == "TOKEN_EXPIRED"


class _WatchedHasher:
    """argon2's hasher (a library, not a store of ours), reporting what the database
    pool held while it verified and running ``during`` at that moment."""

    def __init__(self, real, during=None):  # type: ignore[no-untyped-def]
        self.real, self.during, self.held = real, during, []

    def verify(self, hashed, password):  # type: ignore[no-untyped-def]
        from ccweb import db

        self.held.append(db.engine().pool.checkedout() + db._autocommit_engine().pool.checkedout())
        if self.during is not None:
            self.during()
        return self.real.verify(hashed, password)

    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        return getattr(self.real, name)


def _watch(monkeypatch, during=None) -> _WatchedHasher:  # type: ignore[no-untyped-def]
    from ccweb.auth import passwords

    watched = _WatchedHasher(passwords.hasher(), during)
    monkeypatch.setattr(passwords, "hasher", lambda: watched)
    return watched


def test_login_verifies_the_password_holding_no_database_connection(client, monkeypatch):
    """argon2 runs for tens of ms: a connection held across it let a burst of logins
    take the whole pool (503s for every other request at 500 players)."""
    user = create_user()
    watched = _watch(monkeypatch)
    ok = client.post(
        "/api/auth/login", json={"site_id": user["site_id"], "password": user["password"]}
    )
    assert ok.status_code == 200
    assert watched.held == [0]
    assert (
        count(f"SELECT count(*) FROM users WHERE id = {user['id']} AND last_login_at IS NOT NULL")
        == 1
    )


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE users SET password_hash = 'changed-elsewhere' WHERE id = :id",
        "UPDATE users SET is_active = false WHERE id = :id",
    ],
)
def test_a_change_committed_while_the_password_is_verified_wins(client, monkeypatch, change):
    """The login records itself only against the hash it verified, on an active account:
    a password change or a deactivation committed meanwhile refuses it, issues no token
    and leaves no trace of the login."""
    user = create_user()
    _watch(
        monkeypatch, lambda: in_transaction(lambda s: s.execute(text(change), {"id": user["id"]}))
    )
    resp = client.post(
        "/api/auth/login", json={"site_id": user["site_id"], "password": user["password"]}
    )
    assert resp.status_code == 401 and error_code(resp) == "INVALID_CREDENTIALS"
    assert (
        count(f"SELECT count(*) FROM users WHERE id = {user['id']} AND last_login_at IS NOT NULL")
        == 0
    )
    assert count(f"SELECT count(*) FROM refresh_tokens WHERE user_id = {user['id']}") == 0
