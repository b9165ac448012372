"""Dashboard and profile: every SPEC field, ETag/304, and a per-player cache that any
change of that player invalidates (the next read after a spin shows the new balance)."""

from __future__ import annotations

import json

from ccweb.dashboard.cache import view_key
from tests.factories import auth_headers, create_user

DASHBOARD_KEYS = {
    "profile",
    "streak",
    "active_events",
    "missions",
    "pending_rewards",
    "recent_sessions",
    "shop_highlights",
    "recommendations",
}


def test_dashboard_has_every_section(client):
    user = create_user(gold=777)
    headers = auth_headers(client, user)
    for _ in range(4):
        sid = client.post(
            "/api/games/sessions/start", json={"game_type": "rps"}, headers=headers
        ).get_json()["session_id"]
        client.post(f"/api/games/sessions/{sid}/end", headers=headers)
    resp = client.get("/api/dashboard", headers=headers)
    assert resp.status_code == 200
    d = resp.get_json()
    assert set(d) == DASHBOARD_KEYS
    assert d["profile"]["id"] == user["id"] and d["profile"]["gold_balance"] == 777
    assert d["profile"]["level"] == 1 and d["profile"]["xp_to_next_level"] == 500
    assert {"count", "claimed_today", "next_reward"} <= set(d["streak"])
    assert d["streak"]["next_reward"] == {"gold": 1000, "xp": 50}
    assert d["active_events"] == [] and d["missions"] == {"daily": [], "weekly": []}
    assert d["pending_rewards"] == 0 and d["shop_highlights"] == []
    assert d["recommendations"] == []
    assert len(d["recent_sessions"]) == 3


def test_etag_and_304(client):
    headers = auth_headers(client, create_user())
    first = client.get("/api/dashboard", headers=headers)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and first.headers["Cache-Control"] == "private, no-cache"
    again = client.get("/api/dashboard", headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    other = client.get("/api/dashboard", headers={**headers, "If-None-Match": '"nope"'})
    assert other.status_code == 200 and other.get_json() == first.get_json()


def test_a_spin_invalidates_the_cached_dashboard(client):
    user = create_user(gold=5000)
    headers = auth_headers(client, user)
    before = client.get("/api/dashboard", headers=headers)
    spin = client.post("/api/games/slot/spin", json={"bet": 100}, headers=headers).get_json()
    after = client.get(
        "/api/dashboard", headers={**headers, "If-None-Match": before.headers["ETag"]}
    )
    assert after.status_code == 200
    assert after.get_json()["profile"]["gold_balance"] == spin["gold_balance"]
    assert after.get_json()["profile"]["experience_points"] == 10
    assert after.headers["ETag"] != before.headers["ETag"]


def test_changes_from_other_paths_invalidate_too(client):
    """An admin adjustment (another user's request) and a streak claim both show up."""
    user = create_user(gold=100)
    headers = auth_headers(client, user)
    admin = auth_headers(client, create_user(is_admin=True, gold=0), admin=True)
    assert (
        client.get("/api/dashboard", headers=headers).get_json()["profile"]["gold_balance"] == 100
    )
    client.post(
        f"/api/admin/users/{user['id']}/gold", json={"delta": 50, "reason": "gift"}, headers=admin
    )
    assert (
        client.get("/api/dashboard", headers=headers).get_json()["profile"]["gold_balance"] == 150
    )
    claim = client.post("/api/streak/claim", headers=headers)
    assert claim.status_code == 200
    d = client.get("/api/dashboard", headers=headers).get_json()
    assert d["streak"]["claimed_today"] is True and d["streak"]["count"] == 1
    assert d["profile"]["gold_balance"] == 1150


def test_cache_is_per_player(client):
    a, b = create_user(gold=10), create_user(gold=20)
    ha, hb = auth_headers(client, a), auth_headers(client, b)
    assert client.get("/api/dashboard", headers=ha).get_json()["profile"]["gold_balance"] == 10
    assert client.get("/api/dashboard", headers=hb).get_json()["profile"]["gold_balance"] == 20


def test_profile_fields(client):
    user = create_user(gold=1000)
    headers = auth_headers(client, user)
    client.post("/api/games/rps/play", json={"bet": 10, "choice": "rock"}, headers=headers)
    client.post("/api/actions", json={"action_type": "profile.open"}, headers=headers)
    p = client.get("/api/profile", headers=headers).get_json()
    assert {
        "id",
        "level",
        "experience_points",
        "xp_to_next_level",
        "gold_balance",
        "stats",
        "achievements",
        "recent_actions",
        "active_participations",
    } <= set(p)
    assert p["experience_points"] == 10 and p["xp_to_next_level"] == 490
    assert p["stats"]["games"]["rps"]["total"] == 1
    assert [a["action_type"] for a in p["recent_actions"]] == ["profile.open"]


def test_a_cached_entry_it_cannot_read_is_a_miss(client, rds):
    """Entries from an older release (another format) or garbage are re-rendered, not
    served and not a 500; the re-rendered entry is then served from the cache."""
    user = create_user()
    headers = auth_headers(client, user)
    first = client.get("/api/dashboard", headers=headers).get_json()
    stored = rds.get(view_key(user["id"], "dashboard"))
    assert stored is not None and stored.split("\n", 3)[3] == json.dumps(
        first, separators=(",", ":")
    )
    for junk in ('{"v": "1.0", "d": "x", "e": "y", "b": "{}"}', "a\nb", ""):
        rds.set(view_key(user["id"], "dashboard"), junk)
        again = client.get("/api/dashboard", headers=headers)
        assert again.status_code == 200 and again.get_json() == first
        assert rds.get(view_key(user["id"], "dashboard")) == stored
