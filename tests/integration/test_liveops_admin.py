"""Operator CRUD for LiveOps content (events, missions, achievements), invite-code
management and the seeded default content, against real PostgreSQL and Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from ccweb import seed
from ccweb.db import in_transaction
from ccweb.liveops.schemas import AchievementRequirement, Requirement, RewardItem
from ccweb.player_versions import content_key
from tests.factories import auth_headers, create_user

NOW = datetime.now(UTC).replace(microsecond=0)


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


EVENT = {
    "title": "Spin Week",
    "type": "limited",
    "starts_at": iso(NOW - timedelta(hours=1)),
    "ends_at": iso(NOW + timedelta(days=7)),
    "requirements": [
        {"type": "plays", "target": 10},
        {"type": "wins", "game_type": "slot", "target": 2},
    ],
    "reward_items": [
        {"type": "gold", "amount": 500},
        {"type": "item", "amount": 1, "code": "ticket"},
    ],
}
MISSION = {
    "title": "Play 5",
    "period": "daily",
    "requirements": [{"type": "plays", "target": 5}],
    "reward_items": [{"type": "gold", "amount": 100}],
}
ACHIEVEMENT = {
    "code": "lucky_one",
    "title": "Lucky One",
    "requirements": [{"type": "max_win", "target": 5000}],
    "reward_items": [{"type": "gold", "amount": 250}],
}


def q(sql: str, **params: Any) -> list[dict[str, Any]]:
    return in_transaction(lambda s: [dict(r) for r in s.execute(text(sql), params).mappings()])


def scalar(sql: str, **params: Any) -> Any:
    return in_transaction(lambda s: s.execute(text(sql), params).scalar())


def execute(sql: str, **params: Any) -> None:
    in_transaction(lambda s: s.execute(text(sql), params))


@pytest.fixture
def admin_user() -> dict[str, Any]:
    return create_user(is_admin=True, gold=0)


@pytest.fixture
def admin(client, admin_user) -> dict[str, str]:
    return auth_headers(client, admin_user, admin=True)


def err(resp) -> str:
    return resp.get_json()["error"]["code"]


# ---------------------------------------------------------------------------- events


def test_event_create_list_get_audited_and_bumps_content_version(client, admin, admin_user, rds):
    before = int(rds.get(content_key()) or 0)
    r = client.post("/api/admin/events", json={**EVENT, "tier_required": "VIP"}, headers=admin)
    assert r.status_code == 201, r.get_json()
    ev = r.get_json()
    assert ev["title"] == "Spin Week" and ev["type"] == "limited"
    assert ev["starts_at"] == EVENT["starts_at"] and ev["ends_at"] == EVENT["ends_at"]
    # stored without nulls: game_type only where given, code only on the item
    assert ev["requirements"] == EVENT["requirements"]
    assert ev["reward_items"] == EVENT["reward_items"]
    assert ev["tier_required"] == "VIP" and ev["description"] is None
    assert ev["is_active"] is True and ev["version"] == 1
    assert ev["created_at"].endswith("Z") and ev["updated_at"].endswith("Z")
    assert ev["counts"] == {"joined": 0, "claimable": 0, "claimed": 0}
    assert int(rds.get(content_key()) or 0) == before + 1

    items = client.get("/api/admin/events", headers=admin).get_json()["items"]
    assert [i["id"] for i in items] == [ev["id"]]
    assert items[0] == ev
    assert client.get(f"/api/admin/events/{ev['id']}", headers=admin).get_json() == ev

    audit = q("SELECT admin_id, action, target_type, target_id, payload FROM admin_audit")
    assert len(audit) == 1
    a = audit[0]
    assert (a["admin_id"], a["action"], a["target_type"], a["target_id"]) == (
        admin_user["id"],
        "event.create",
        "event",
        ev["id"],
    )
    assert a["payload"]["title"] == "Spin Week" and a["payload"]["starts_at"] == EVENT["starts_at"]


def test_event_list_filters_on_active_and_pages(client, admin):
    ids = []
    for n, active in enumerate((True, False, True)):
        body = {**EVENT, "title": f"E{n}", "is_active": active}
        ids.append(client.post("/api/admin/events", json=body, headers=admin).get_json()["id"])

    def listed(qs: str) -> list[int]:
        return [
            i["id"] for i in client.get(f"/api/admin/events{qs}", headers=admin).get_json()["items"]
        ]

    assert listed("") == ids[::-1]  # newest first
    assert listed("?active=true") == [ids[2], ids[0]]
    assert listed("?active=false") == [ids[1]]
    assert listed("?limit=1&offset=1") == [ids[1]]


def test_event_patch_version_check_bumps_version_and_audits(client, admin):
    ev = client.post("/api/admin/events", json=EVENT, headers=admin).get_json()
    r = client.patch(
        f"/api/admin/events/{ev['id']}",
        json={"title": "Spin Week II", "version": 1, "description": "more"},
        headers=admin,
    )
    assert r.status_code == 200, r.get_json()
    patched = r.get_json()
    assert patched["title"] == "Spin Week II" and patched["description"] == "more"
    assert patched["version"] == 2
    assert patched["updated_at"] >= ev["updated_at"]
    assert patched["requirements"] == ev["requirements"]  # untouched fields stay

    stale = client.patch(
        f"/api/admin/events/{ev['id']}", json={"title": "lost update", "version": 1}, headers=admin
    )
    assert stale.status_code == 409 and err(stale) == "VERSION_CONFLICT"
    assert stale.get_json()["error"]["details"]["current_version"] == 2
    assert scalar("SELECT title FROM live_events WHERE id = :i", i=ev["id"]) == "Spin Week II"

    # no version: last writer wins, still versioned; null clears a nullable field
    r = client.patch(
        f"/api/admin/events/{ev['id']}",
        json={
            "description": None,
            "is_active": False,
            "requirements": [{"type": "plays", "target": 3}],
        },
        headers=admin,
    )
    assert r.status_code == 200
    body = r.get_json()
    assert body["version"] == 3 and body["description"] is None and body["is_active"] is False
    assert body["requirements"] == [{"type": "plays", "target": 3}]

    updates = q(
        "SELECT payload FROM admin_audit WHERE action = 'event.update' AND target_id = :t"
        " ORDER BY id",
        t=ev["id"],
    )
    assert [u["payload"] for u in updates] == [
        {"changes": {"title": "Spin Week II", "description": "more"}, "version": 2},
        {
            "changes": {
                "description": None,
                "is_active": False,
                "requirements": [{"type": "plays", "target": 3}],
            },
            "version": 3,
        },
    ]


def test_event_patch_window_is_checked_against_stored_values(client, admin):
    ev = client.post("/api/admin/events", json=EVENT, headers=admin).get_json()
    before_start = iso(NOW - timedelta(days=1))
    r = client.patch(f"/api/admin/events/{ev['id']}", json={"ends_at": before_start}, headers=admin)
    assert r.status_code == 400 and err(r) == "VALIDATION_ERROR"
    later = iso(NOW + timedelta(days=30))
    r = client.patch(f"/api/admin/events/{ev['id']}", json={"starts_at": later}, headers=admin)
    assert r.status_code == 400 and err(r) == "VALIDATION_ERROR"
    row = q("SELECT version, ends_at FROM live_events WHERE id = :i", i=ev["id"])[0]
    assert row["version"] == 1 and iso(row["ends_at"].astimezone(UTC)) == EVENT["ends_at"]
    assert scalar("SELECT count(*) FROM admin_audit WHERE action = 'event.update'") == 0
    # a consistent move of both ends is fine, with any UTC offset
    r = client.patch(
        f"/api/admin/events/{ev['id']}",
        json={"starts_at": "2030-01-01T09:00:00+09:00", "ends_at": "2030-01-02T00:00:00Z"},
        headers=admin,
    )
    assert r.status_code == 200
    assert (r.get_json()["starts_at"], r.get_json()["ends_at"]) == (
        "2030-01-01T00:00:00Z",
        "2030-01-02T00:00:00Z",
    )


def test_event_requirements_and_rewards_frozen_once_players_joined(client, admin):
    ev = client.post("/api/admin/events", json=EVENT, headers=admin).get_json()
    player = create_user()
    execute(
        "INSERT INTO event_participations (user_id, event_id, progress)"
        " VALUES (:u, :e, ARRAY[0, 0])",
        u=player["id"],
        e=ev["id"],
    )
    url = f"/api/admin/events/{ev['id']}"
    for change in (
        {"requirements": [{"type": "plays", "target": 99}]},
        {"reward_items": [{"type": "gold", "amount": 1}]},
        {"title": "sneaky", "requirements": [{"type": "wins", "target": 1}]},
    ):
        r = client.patch(url, json=change, headers=admin)
        assert r.status_code == 409 and err(r) == "IN_USE", change
    row = q(
        "SELECT title, requirements, reward_items, version FROM live_events WHERE id = :i",
        i=ev["id"],
    )[0]
    assert row == {
        "title": "Spin Week",
        "requirements": EVENT["requirements"],
        "reward_items": EVENT["reward_items"],
        "version": 1,
    }
    # resending the same lists is not a change; other fields stay editable
    r = client.patch(
        url,
        json={"title": "Renamed", "requirements": EVENT["requirements"], "is_active": False},
        headers=admin,
    )
    assert r.status_code == 200 and r.get_json()["title"] == "Renamed"
    got = client.get(url, headers=admin).get_json()
    assert got["counts"] == {"joined": 1, "claimable": 0, "claimed": 0}
    execute("UPDATE event_participations SET status = 'claimed' WHERE event_id = :e", e=ev["id"])
    assert client.get(url, headers=admin).get_json()["counts"] == {
        "joined": 1,
        "claimable": 0,
        "claimed": 1,
    }


def test_unknown_ids_are_404(client, admin):
    for kind in ("events", "missions", "achievements"):
        assert client.get(f"/api/admin/{kind}/987654", headers=admin).status_code == 404
        r = client.patch(f"/api/admin/{kind}/987654", json={"title": "x"}, headers=admin)
        assert r.status_code == 404 and err(r) == "NOT_FOUND"
    r = client.patch("/api/admin/invite-codes/987654", json={"is_active": False}, headers=admin)
    assert r.status_code == 404
    assert scalar("SELECT count(*) FROM admin_audit") == 0


def test_non_admin_is_403_and_anonymous_401(client):
    player = create_user()
    headers = auth_headers(client, player)
    ev = in_transaction(
        lambda s: s.execute(
            text(
                "INSERT INTO live_events (title, type, starts_at, ends_at, requirements,"
                " reward_items) VALUES ('x', 'daily', now(), now() + interval '1 day',"
                ' \'[{"type": "plays", "target": 1}]\', \'[{"type": "gold", "amount": 1}]\')'
                " RETURNING id"
            )
        ).scalar_one()
    )
    calls = [
        ("post", "/api/admin/events", EVENT),
        ("patch", f"/api/admin/events/{ev}", {"title": "hijack"}),
        ("get", "/api/admin/events", None),
        ("get", f"/api/admin/events/{ev}", None),
        ("post", "/api/admin/missions", MISSION),
        ("get", "/api/admin/missions", None),
        ("post", "/api/admin/achievements", ACHIEVEMENT),
        ("get", "/api/admin/achievements", None),
        ("get", "/api/admin/invite-codes", None),
        ("patch", "/api/admin/invite-codes/1", {"is_active": False}),
    ]
    for method, url, body in calls:
        r = getattr(client, method)(url, json=body, headers=headers)
        assert r.status_code == 403 and err(r) == "FORBIDDEN", (method, url)
        assert getattr(client, method)(url, json=body).status_code == 401, (method, url)
    assert scalar("SELECT title FROM live_events WHERE id = :i", i=ev) == "x"
    assert scalar("SELECT count(*) FROM live_events") == 1
    assert scalar("SELECT count(*) FROM missions") == 0
    assert scalar("SELECT count(*) FROM achievements") == 0


BAD_EVENTS = [
    {"ends_at": iso(NOW - timedelta(days=1))},  # before starts_at
    {"ends_at": EVENT["starts_at"]},  # empty window
    {"starts_at": "2030-01-01T00:00:00"},  # no timezone
    {"starts_at": "0001-01-01T00:00:00+05:00"},  # out of range
    {"starts_at": 1700000000},  # strict: a number is not a datetime
    {"type": "weekly"},
    {"title": ""},
    {"title": "   "},
    {"title": "x" * 121},
    {"requirements": []},
    {"requirements": [{"type": "plays", "target": 1}] * 6},
    {"requirements": [{"type": "logins", "target": 1}]},  # unknown requirement type
    {"requirements": [{"type": "max_win", "target": 1}]},  # achievements only
    {"requirements": [{"type": "plays", "target": -1}]},  # negative target
    {"requirements": [{"type": "plays", "target": 0}]},
    {"requirements": [{"type": "plays", "target": 10**13}]},
    {"requirements": [{"type": "plays", "target": "10"}]},  # strict ints
    {"requirements": [{"type": "streak_days", "game_type": "slot", "target": 2}]},
    {"requirements": [{"type": "plays", "game_type": "poker", "target": 2}]},
    {"reward_items": [{"type": "item", "amount": 1}]},  # item without code
    {"reward_items": [{"type": "gold", "amount": 5, "code": "coin"}]},  # code on gold
    {"reward_items": [{"type": "gold", "amount": 0}]},
    {"reward_items": [{"type": "gems", "amount": 5}]},
    {"reward_items": []},
    {"tier_required": "GOLD"},
    {"title": "nul\u0000byte"},
    {"description": "d" * 2001},
    {"is_active": "yes"},
]


@pytest.mark.parametrize("change", BAD_EVENTS)
def test_bad_event_bodies_are_400_and_write_nothing(client, admin, rds, change):
    before = rds.get(content_key())
    r = client.post("/api/admin/events", json={**EVENT, **change}, headers=admin)
    assert r.status_code == 400, (change, r.get_json())
    assert err(r) == "VALIDATION_ERROR"
    assert scalar("SELECT count(*) FROM live_events") == 0
    assert scalar("SELECT count(*) FROM admin_audit") == 0
    assert rds.get(content_key()) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"version": 1},  # nothing to change
        {"title": None},  # not nullable
        {"type": None},
        {"requirements": None},
        {"version": 0, "title": "x"},
        {"version": 2**40, "title": "x"},
        {"starts_at": iso(NOW + timedelta(days=9)), "ends_at": iso(NOW + timedelta(days=8))},
        {"requirements": [{"type": "plays", "target": -5}]},
        {"reward_items": [{"type": "item", "amount": 1}]},
    ],
)
def test_bad_event_patches_are_400_and_change_nothing(client, admin, body):
    ev = client.post("/api/admin/events", json=EVENT, headers=admin).get_json()
    r = client.patch(f"/api/admin/events/{ev['id']}", json=body, headers=admin)
    assert r.status_code == 400 and err(r) == "VALIDATION_ERROR", body
    assert client.get(f"/api/admin/events/{ev['id']}", headers=admin).get_json() == ev
    assert scalar("SELECT count(*) FROM admin_audit WHERE action = 'event.update'") == 0


# ---------------------------------------------------------------------------- missions


def test_mission_crud_version_and_in_use(client, admin, rds):
    before = int(rds.get(content_key()) or 0)
    r = client.post("/api/admin/missions", json={**MISSION, "sort_order": 5}, headers=admin)
    assert r.status_code == 201, r.get_json()
    m = r.get_json()
    assert (m["title"], m["period"], m["sort_order"], m["version"], m["is_active"]) == (
        "Play 5",
        "daily",
        5,
        1,
        True,
    )
    assert m["counts"] == {"joined": 0, "claimable": 0, "claimed": 0}
    assert int(rds.get(content_key()) or 0) == before + 1
    weekly = client.post(
        "/api/admin/missions", json={**MISSION, "title": "W", "period": "weekly"}, headers=admin
    ).get_json()
    listed = client.get("/api/admin/missions", headers=admin).get_json()["items"]
    assert [i["id"] for i in listed] == [m["id"], weekly["id"]]  # daily before weekly
    assert client.get(f"/api/admin/missions/{m['id']}", headers=admin).get_json() == m

    url = f"/api/admin/missions/{m['id']}"
    r = client.patch(
        url, json={"requirements": [{"type": "wins", "target": 2}], "version": 1}, headers=admin
    )
    assert r.status_code == 200 and r.get_json()["version"] == 2
    stale = client.patch(url, json={"sort_order": 1, "version": 1}, headers=admin)
    assert stale.status_code == 409 and err(stale) == "VERSION_CONFLICT"

    player = create_user()
    execute(
        "INSERT INTO user_missions (user_id, mission_id, period_start, progress, status)"
        " VALUES (:u, :m, current_date, ARRAY[2], 'claimable')",
        u=player["id"],
        m=m["id"],
    )
    for change in (
        {"requirements": [{"type": "wins", "target": 3}]},
        {"reward_items": [{"type": "xp", "amount": 10}]},
        {"period": "weekly"},
    ):
        r = client.patch(url, json=change, headers=admin)
        assert r.status_code == 409 and err(r) == "IN_USE", change
    r = client.patch(url, json={"title": "Win 2", "sort_order": -3, "version": 2}, headers=admin)
    assert r.status_code == 200
    got = r.get_json()
    assert (got["title"], got["sort_order"], got["version"], got["period"]) == (
        "Win 2",
        -3,
        3,
        "daily",
    )
    assert got["requirements"] == [{"type": "wins", "target": 2}]
    assert got["counts"] == {"joined": 1, "claimable": 1, "claimed": 0}
    actions = [
        a["action"]
        for a in q("SELECT action FROM admin_audit WHERE target_type = 'mission' ORDER BY id")
    ]
    assert actions == ["mission.create", "mission.create", "mission.update", "mission.update"]


@pytest.mark.parametrize(
    "change",
    [
        {"period": "monthly"},
        {"sort_order": 10**7},
        {"sort_order": 1.5},
        {"requirements": [{"type": "max_win", "target": 1}]},
        {"requirements": [{"type": "plays"}]},
        {"reward_items": [{"type": "xp", "amount": 10**10}]},
        {"title": None},
    ],
)
def test_bad_mission_bodies_are_400_and_write_nothing(client, admin, change):
    r = client.post("/api/admin/missions", json={**MISSION, **change}, headers=admin)
    assert r.status_code == 400 and err(r) == "VALIDATION_ERROR", change
    assert scalar("SELECT count(*) FROM missions") == 0
    assert scalar("SELECT count(*) FROM admin_audit") == 0


# ---------------------------------------------------------------------------- achievements


def test_achievement_crud_duplicate_and_in_use(client, admin):
    r = client.post("/api/admin/achievements", json=ACHIEVEMENT, headers=admin)
    assert r.status_code == 201, r.get_json()
    a = r.get_json()
    assert a["code"] == "lucky_one" and a["requirements"] == [{"type": "max_win", "target": 5000}]
    assert a["counts"] == {"unlocked": 0, "claimed": 0} and "version" not in a
    dup = client.post(
        "/api/admin/achievements", json={**ACHIEVEMENT, "title": "Other"}, headers=admin
    )
    assert dup.status_code == 409 and err(dup) == "DUPLICATE"
    assert scalar("SELECT count(*) FROM achievements") == 1
    assert client.get("/api/admin/achievements", headers=admin).get_json()["items"] == [a]
    assert client.get(f"/api/admin/achievements/{a['id']}", headers=admin).get_json() == a

    url = f"/api/admin/achievements/{a['id']}"
    r = client.patch(
        url, json={"requirements": [{"type": "max_win", "target": 9000}]}, headers=admin
    )
    assert r.status_code == 200 and r.get_json()["requirements"][0]["target"] == 9000
    # code is the identity: not part of the patch body (ignored, never changed)
    r = client.patch(url, json={"code": "renamed", "title": "Lucky"}, headers=admin)
    assert r.status_code == 200 and r.get_json()["code"] == "lucky_one"

    player = create_user()
    execute(
        "INSERT INTO user_achievements (user_id, achievement_id, claimed_at)"
        " VALUES (:u, :a, now())",
        u=player["id"],
        a=a["id"],
    )
    r = client.patch(url, json={"requirements": [{"type": "max_win", "target": 1}]}, headers=admin)
    assert r.status_code == 409 and err(r) == "IN_USE"
    r = client.patch(url, json={"reward_items": [{"type": "gold", "amount": 1}]}, headers=admin)
    assert r.status_code == 409 and err(r) == "IN_USE"
    r = client.patch(url, json={"is_active": False, "description": "retired"}, headers=admin)
    assert r.status_code == 200
    got = r.get_json()
    assert got["is_active"] is False and got["requirements"][0]["target"] == 9000
    assert got["counts"] == {"unlocked": 1, "claimed": 1}
    assert (
        client.get("/api/admin/achievements?active=true", headers=admin).get_json()["items"] == []
    )
    actions = [r["action"] for r in q("SELECT action FROM admin_audit ORDER BY id")]
    assert actions == [
        "achievement.create",
        "achievement.update",
        "achievement.update",
        "achievement.update",
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"code": "Has-Caps"},
        {"code": "x"},
        {"code": "a" * 65},
        {"code": None},
        {"requirements": [{"type": "logins", "target": 1}]},
        {"requirements": [{"type": "max_win", "target": -1}]},
        {"reward_items": [{"type": "item", "amount": 2}]},
    ],
)
def test_bad_achievement_bodies_are_400_and_write_nothing(client, admin, change):
    r = client.post("/api/admin/achievements", json={**ACHIEVEMENT, **change}, headers=admin)
    assert r.status_code == 400 and err(r) == "VALIDATION_ERROR", change
    assert scalar("SELECT count(*) FROM achievements") == 0
    assert scalar("SELECT count(*) FROM admin_audit") == 0


# ---------------------------------------------------------------------------- invite codes


def test_invite_codes_list_and_update_take_effect_on_signup(client, admin, seeded):
    made = client.post(
        "/api/admin/invite-codes", json={"code": "SPRING", "max_uses": 5}, headers=admin
    ).get_json()
    items = client.get("/api/admin/invite-codes", headers=admin).get_json()["items"]
    assert [(i["code"], i["uses"], i["max_uses"], i["is_active"]) for i in items] == [
        ("SPRING", 0, 5, True),
        ("5858", 0, None, True),
    ]
    url = f"/api/admin/invite-codes/{made['id']}"
    r = client.patch(url, json={"is_active": False}, headers=admin)
    assert (
        r.status_code == 200
        and r.get_json()["is_active"] is False
        and r.get_json()["max_uses"] == 5
    )
    signup = {"site_id": "spring_1", "nickname": "Spring", "password": "longpassword"}
    refused = client.post("/api/auth/signup", json={**signup, "invite_code": "SPRING"})
    assert refused.status_code == 400
    r = client.patch(url, json={"is_active": True, "max_uses": None}, headers=admin)
    assert r.status_code == 200 and r.get_json()["max_uses"] is None
    assert (
        client.post("/api/auth/signup", json={**signup, "invite_code": "SPRING"}).status_code == 201
    )
    active = client.get("/api/admin/invite-codes?active=false", headers=admin).get_json()["items"]
    assert active == []
    payloads = [
        r["payload"]
        for r in q(
            "SELECT payload FROM admin_audit WHERE action = 'invite_code.update' ORDER BY id"
        )
    ]
    assert payloads == [{"is_active": False}, {"is_active": True, "max_uses": None}]
    for bad in ({}, {"is_active": None}, {"max_uses": 0}, {"max_uses": "3"}):
        r = client.patch(url, json=bad, headers=admin)
        assert r.status_code == 400 and err(r) == "VALIDATION_ERROR", bad
    assert scalar("SELECT count(*) FROM admin_audit WHERE action = 'invite_code.update'") == 2


# ---------------------------------------------------------------------------- seed


def test_seed_content_is_idempotent_valid_and_keeps_its_window(client, admin):
    in_transaction(lambda s: seed.run(s))

    def snapshot() -> dict[str, Any]:
        return {
            "events": q(
                "SELECT id, title, starts_at, ends_at, requirements FROM live_events ORDER BY id"
            ),
            "missions": q("SELECT id, title, period, requirements FROM missions ORDER BY id"),
            "achievements": q("SELECT id, code, requirements FROM achievements ORDER BY id"),
        }

    first = snapshot()
    assert {e["title"] for e in first["events"]} >= {
        "Spin Marathon",
        "Slot Lover",
        "High Roller",
        "Streak Keeper",
    }
    assert {m["period"] for m in first["missions"]} == {"daily", "weekly"}
    assert {a["code"] for a in first["achievements"]} >= {
        "first_win",
        "spins_100",
        "big_win",
        "streak_7",
        "high_roller",
    }
    for e in first["events"]:
        assert e["starts_at"] <= datetime.now(UTC) < e["ends_at"]
    slot = next(e for e in first["events"] if e["title"] == "Slot Lover")
    assert slot["requirements"] == [
        {"type": "plays", "game_type": "slot", "target": 20},
        {"type": "wins", "game_type": "slot", "target": 5},
    ]
    # the seeded content passes the same validation as the operator API
    for row in q(
        "SELECT requirements, reward_items FROM live_events"
        " UNION ALL SELECT requirements, reward_items FROM missions"
    ):
        for r in row["requirements"]:
            Requirement.model_validate(r)
        for item in row["reward_items"]:
            RewardItem.model_validate(item)
    for row in q("SELECT requirements, reward_items FROM achievements"):
        for r in row["requirements"]:
            AchievementRequirement.model_validate(r)
        for item in row["reward_items"]:
            RewardItem.model_validate(item)

    # an operator edit survives, and a second run neither duplicates nor moves anything
    marathon = next(e for e in first["events"] if e["title"] == "Spin Marathon")
    execute(
        "UPDATE live_events SET ends_at = ends_at + interval '5 days' WHERE id = :i",
        i=marathon["id"],
    )
    in_transaction(lambda s: seed.run(s))
    second = snapshot()
    assert [e["id"] for e in second["events"]] == [e["id"] for e in first["events"]]
    assert second["missions"] == first["missions"]
    assert second["achievements"] == first["achievements"]
    moved = next(e for e in second["events"] if e["id"] == marathon["id"])
    assert moved["ends_at"] == marathon["ends_at"] + timedelta(days=5)
    assert moved["starts_at"] == marathon["starts_at"]

    # the operator API lists the seeded content
    titles = {
        i["title"] for i in client.get("/api/admin/events", headers=admin).get_json()["items"]
    }
    assert "Streak Keeper" in titles
