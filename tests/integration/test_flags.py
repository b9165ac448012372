"""Feature flags through the API, against the real PostgreSQL and Redis: typed writes,
targeting, audit, admin-only access, the toggles that became flags, and no query per read."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import event, text

from ccweb import db
from ccweb.flags import cache, service
from tests.factories import auth_headers, create_product, create_user


def rows(sql: str, **params: Any) -> list[dict[str, Any]]:
    with db.engine().connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), params).mappings()]


@pytest.fixture
def admin(client) -> dict[str, str]:
    return auth_headers(client, create_user(is_admin=True, gold=0), admin=True)


def put(client, headers, key: str, **body: Any):
    return client.put(f"/api/admin/flags/{key}", json=body, headers=headers)


def set_segment(user_id: int, label: str) -> None:
    with db.engine().begin() as conn:
        conn.execute(
            text(
                "INSERT INTO user_segments (user_id, label, r_days, f_count30, m_sum30, r_score,"
                " f_score, m_score, rfm_total) VALUES (:u, :l, 1, 1, 1, 1, 1, 1, 1)"
            ),
            {"u": user_id, "l": label},
        )


@pytest.mark.parametrize(
    ("key", "body", "field"),
    [
        ("signup.invite_required", {"value": "false"}, "value"),  # a known bool flag
        ("signup.grant_gold", {"value": "500"}, "value"),  # a known number flag
        ("signup.grant_gold", {"value": -5}, "value"),  # ... that must be >= 0
        ("signup.grant_gold", {"value": 1.5}, "value"),  # ... and whole
        ("signup.grant_gold", {"value": True, "value_type": "bool"}, "value_type"),
        ("ui.theme", {"value": 3, "value_type": "string"}, "value"),
        ("ui.theme", {"value": None}, "value"),
        ("ui.theme", {"value": "x", "value_type": "color"}, "value_type"),
        ("ui.theme", {"value": "x", "rollout_percent": 101}, "rollout_percent"),
        ("ui.theme", {"value": "x", "target_tiers": ["GOLD"]}, "target_tiers.0"),
        ("ui.theme", {"value": "x", "target_segments": ["Shark"]}, "target_segments.0"),
        ("ui.theme", {"value": "x", "off_value": 1}, "off_value"),
        ("ui.theme", {"value": "x", "client_visible": "yes"}, "client_visible"),
    ],
)
def test_a_bad_value_is_a_400_and_nothing_is_stored(client, admin, key, body, field):
    r = client.put(f"/api/admin/flags/{key}", json=body, headers=admin)
    assert r.status_code == 400, r.get_json()
    error = r.get_json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    details = error["details"]
    fields = {f["field"] for f in details.get("fields", [])} | set(details)
    assert field in fields, details
    assert rows("SELECT key FROM feature_flags") == []
    assert rows("SELECT id FROM admin_audit") == []


def test_a_flag_keeps_its_type_after_the_first_write(client, admin):
    assert put(client, admin, "ui.limit", value=3).get_json()["value_type"] == "number"
    r = put(client, admin, "ui.limit", value="three")
    assert r.status_code == 400
    assert rows("SELECT value FROM feature_flags WHERE key = 'ui.limit'") == [{"value": 3}]
    # changing the type is an explicit decision
    changed = put(client, admin, "ui.limit", value="three", value_type="string").get_json()
    assert (changed["value"], changed["value_type"], changed["version"]) == ("three", "string", 2)


def test_put_is_audited_with_before_and_after_and_versioned(client, admin):
    first = put(client, admin, "ui.banner", value="hello", client_visible=True).get_json()
    assert first["version"] == 1
    stale = put(client, admin, "ui.banner", value="bye", version=0)
    assert stale.status_code == 409 and stale.get_json()["error"]["code"] == "VERSION_CONFLICT"
    second = put(client, admin, "ui.banner", value="bye", version=1).get_json()
    assert second["version"] == 2 and second["client_visible"] is True  # kept
    audit = rows("SELECT action, target_key, payload FROM admin_audit ORDER BY id")
    assert [(a["action"], a["target_key"]) for a in audit] == [("flag.put", "ui.banner")] * 2
    assert audit[1]["payload"]["before"]["value"] == "hello"
    assert audit[1]["payload"]["after"]["value"] == "bye"
    listed = client.get("/api/admin/flags", headers=admin).get_json()
    assert listed["ui.banner"]["value"] == "bye"
    # known flags are listed at their default until someone stores them
    assert listed["signup.invite_required"] == {
        **listed["signup.invite_required"],
        "value": True,
        "version": 0,
        "known": True,
    }
    assert client.get("/api/admin/flags/ui.banner", headers=admin).get_json()["version"] == 2
    assert client.get("/api/admin/flags/ui.nothing", headers=admin).status_code == 404


def test_admin_only(client):
    player = auth_headers(client, create_user())
    for method, path in (
        ("get", "/api/admin/flags"),
        ("get", "/api/admin/flags/ui.x"),
        ("put", "/api/admin/flags/ui.x"),
    ):
        call = getattr(client, method)
        kwargs = {"json": {"value": True}} if method == "put" else {}
        assert call(path, **kwargs).status_code == 401
        r = call(path, headers=player, **kwargs)
        assert r.status_code == 403 and r.get_json()["error"]["code"] == "FORBIDDEN"
    assert client.get("/api/flags").status_code == 401
    assert rows("SELECT key FROM feature_flags") == []


def test_client_flags_apply_tier_and_segment_targeting(client, admin):
    put(client, admin, "ui.whale_lounge", value=True, client_visible=True,
        target_tiers=["VIP"], target_segments=["Whale"])  # fmt: skip
    put(client, admin, "ui.return_offer", value="comeback", off_value="none",
        client_visible=True, target_segments=["AtRisk"])  # fmt: skip
    put(client, admin, "ops.secret", value=1)  # server-only: never shown to players
    vip_whale = create_user(tier="VIP")
    set_segment(vip_whale["id"], "Whale")
    std_whale = create_user()
    set_segment(std_whale["id"], "Whale")
    at_risk = create_user()
    set_segment(at_risk["id"], "AtRisk")
    nobody = create_user()

    def seen(user: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = client.get("/api/flags", headers=auth_headers(client, user)).json
        return {k: v for k, v in body.items() if k.startswith(("ui.", "ops."))}

    assert seen(vip_whale) == {"ui.whale_lounge": True, "ui.return_offer": "none"}
    assert seen(std_whale) == {"ui.whale_lounge": False, "ui.return_offer": "none"}
    assert seen(at_risk) == {"ui.whale_lounge": False, "ui.return_offer": "comeback"}
    assert seen(nobody) == {"ui.whale_lounge": False, "ui.return_offer": "none"}


def test_client_rollout_over_the_api_only_adds_players(client, admin):
    users = [create_user(gold=0) for _ in range(40)]
    headers = [auth_headers(client, u) for u in users]
    inside_before: set[int] = set()
    for pct in (20, 50, 100):
        put(client, admin, "ui.beta", value=True, client_visible=True, rollout_percent=pct)
        inside = {u["id"] for u, h in zip(users, headers, strict=True)
                  if client.get("/api/flags", headers=h).json["ui.beta"]}  # fmt: skip
        assert inside_before <= inside
        inside_before = inside
    assert len(inside_before) == 40


def test_invite_and_grant_flags_drive_signup(client, admin):
    signup = {"site_id": "newbie", "nickname": "Newbie", "password": "password-1234"}
    assert client.post("/api/auth/signup", json={**signup, "invite_code": None}).status_code == 400
    put(client, admin, "signup.invite_required", value=False)
    put(client, admin, "signup.grant_gold", value=250)
    r = client.post("/api/auth/signup", json={**signup, "invite_code": None})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["user"]["gold_balance"] == 250


def test_game_kill_switch_and_xp_flag(client, admin):
    player = create_user(gold=10_000)
    headers = auth_headers(client, player)
    put(client, admin, "games.xp_per_round", value=40)
    ok = client.post("/api/games/slot/spin", json={"bet": 100}, headers=headers)
    assert ok.status_code == 200 and ok.get_json()["experience_points"] == 40
    put(client, admin, "games.slot.enabled", value=False)
    off = client.post("/api/games/slot/spin", json={"bet": 100}, headers=headers)
    assert off.status_code == 403 and off.get_json()["error"]["code"] == "FEATURE_DISABLED"
    assert rows("SELECT count(*) AS n FROM game_rounds") == [{"n": 1}]
    other = client.post("/api/games/rps/play", json={"bet": 100, "choice": "rock"}, headers=headers)
    assert other.status_code == 200  # only the slot is off
    assert client.get("/api/flags", headers=headers).json["games.slot.enabled"] is False


def test_shop_kill_switch_refuses_new_purchases_but_replays_done_ones(client, admin):
    product = create_product(price_gold=100)
    headers = auth_headers(client, create_user(gold=1000))
    body = {"product_id": product["id"], "idempotency_key": "k-1"}
    assert client.post("/api/shop/purchase", json=body, headers=headers).status_code == 200
    put(client, admin, "shop.enabled", value=False)
    again = client.post("/api/shop/purchase", json=body, headers=headers)
    assert again.status_code == 200 and again.headers.get("Idempotent-Replay") == "true"
    body2 = {**body, "idempotency_key": "k-2"}
    new = client.post("/api/shop/purchase", json=body2, headers=headers)
    assert new.status_code == 403 and new.get_json()["error"]["code"] == "FEATURE_DISABLED"
    assert rows("SELECT count(*) AS n FROM shop_purchases") == [{"n": 1}]


def test_reading_flags_runs_no_query(client, admin):
    put(client, admin, "ui.x", value=True)
    service.value("ui.x")  # loaded
    assert cache.get_cache().ready.wait(5)  # the listener's own reload is behind us
    statements: list[str] = []
    reader = threading.get_ident()

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        # this thread's statements: the listener (another thread) may reload at any time
        if threading.get_ident() == reader:
            statements.append(statement)

    event.listen(db.engine(), "before_cursor_execute", count)
    try:
        for _ in range(1000):
            assert service.value("ui.x") is True
            assert service.value_for("ui.x", 7, "STANDARD", None) is True
            assert service.value("signup.invite_required") is True  # a default, no row
    finally:
        event.remove(db.engine(), "before_cursor_execute", count)
    assert statements == []
