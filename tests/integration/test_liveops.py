"""Player LiveOps API against real PostgreSQL/Redis: join, progress through the real
worker group, claims paid exactly once through the ledger, expiry, dashboard sections."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from ccweb.dashboard.cache import view_key
from ccweb.db import in_transaction
from tests.factories import (
    auth_headers,
    balance,
    create_achievement,
    create_event,
    create_mission,
    create_user,
    ledger_sum,
)
from tests.processes import wait_for
from tests.worker._support import progress_consumer, run_burst


def q(sql: str, **params):
    return in_transaction(lambda s: [dict(r) for r in s.execute(text(sql), params).mappings()])


@pytest.fixture
def player(client):
    user = create_user(gold=10_000)
    return user, auth_headers(client, user)


@pytest.fixture
def drain(rds, settings):
    """Run the real ``progress`` consumer group over everything published so far."""
    return lambda: run_burst(progress_consumer(rds, settings))


def spin(client, headers, n: int = 1, bet: int = 10) -> None:
    for _ in range(n):
        r = client.post("/api/games/slot/spin", json={"bet": bet}, headers=headers)
        assert r.status_code == 200, r.get_json()


def make_claimable(user_id: int, event_id: int) -> None:
    in_transaction(
        lambda s: s.execute(
            text(
                "UPDATE event_participations SET status = 'claimable',"
                " progress = ARRAY[1000000] WHERE user_id = :u AND event_id = :e"
            ),
            {"u": user_id, "e": event_id},
        )
    )


def test_join_play_and_claim_the_whole_loop(client, player, drain):
    user, headers = player
    eid = create_event(
        [{"type": "plays", "target": 3}],
        [{"type": "gold", "amount": 700}, {"type": "xp", "amount": 40}],
    )
    listed = client.get("/api/events?active=true", headers=headers).get_json()
    assert [e["id"] for e in listed] == [eid] and listed[0]["participation"] is None
    assert listed[0]["requirements"] == [{"type": "plays", "target": 3}]

    r = client.post(f"/api/events/{eid}/participate", headers=headers)
    assert r.status_code == 200
    joined = r.get_json()
    assert joined["status"] == "active" and joined["progress_version"] == 0
    assert joined["progress"] == [{"type": "plays", "current": 0, "target": 3}]
    again = client.post(f"/api/events/{eid}/participate", headers=headers).get_json()
    assert again["joined_at"] == joined["joined_at"]
    assert q("SELECT count(*) AS n FROM event_participations")[0]["n"] == 1

    r = client.post(f"/api/events/{eid}/claim", headers=headers)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "NOT_CLAIMABLE"

    spin(client, headers, 3)
    drain()
    p = client.get("/api/events", headers=headers).get_json()[0]["participation"]
    assert p["status"] == "claimable" and p["progress"][0]["current"] == 3
    assert p["progress_version"] >= 1
    pending = client.get("/api/rewards/pending", headers=headers).get_json()
    assert pending["count"] == 1 and pending["items"][0]["source_type"] == "event"

    before = balance(user["id"])
    r = client.post(f"/api/events/{eid}/claim", headers=headers)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["event_id"] == eid and body["status"] == "claimed"
    assert body["gold_balance"] == before + 700 == balance(user["id"]) == ledger_sum(user["id"])
    assert body["progress_version"] == p["progress_version"] + 1 and body["claimed_at"]
    assert body["reward_items"] == [{"type": "gold", "amount": 700}, {"type": "xp", "amount": 40}]
    keys = q("SELECT idempotency_key FROM wallet_ledger WHERE source_type = 'event'")
    assert keys == [{"idempotency_key": f"event:{eid}:{user['id']}"}]
    types = [r["event_type"] for r in q("SELECT event_type FROM outbox ORDER BY id")]
    assert "event.claim" in types and "reward.granted" in types and "event.participate" in types

    r = client.post(f"/api/events/{eid}/claim", headers=headers)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "ALREADY_CLAIMED"
    assert balance(user["id"]) == before + 700
    assert client.get("/api/rewards/pending", headers=headers).get_json()["count"] == 0


def test_fifty_concurrent_claims_pay_exactly_once(app, player):
    user, headers = player
    eid = create_event([{"type": "plays", "target": 1}], [{"type": "gold", "amount": 5000}])
    app.test_client().post(f"/api/events/{eid}/participate", headers=headers)
    make_claimable(user["id"], eid)
    before = balance(user["id"])

    def claim(_: int) -> tuple[int, str | None]:
        r = app.test_client().post(f"/api/events/{eid}/claim", headers=headers)
        return r.status_code, (r.get_json().get("error") or {}).get("code")

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(claim, range(50)))
    assert results.count((200, None)) == 1
    assert results.count((409, "ALREADY_CLAIMED")) == 49
    assert balance(user["id"]) == before + 5000 == ledger_sum(user["id"])
    assert len(q("SELECT * FROM wallet_ledger WHERE source_type = 'event'")) == 1


def test_an_event_that_expires_while_claimable_cannot_be_claimed(client, player, clock):
    user, headers = player
    eid = create_event([{"type": "plays", "target": 1}], ends_in_s=60)
    assert client.post(f"/api/events/{eid}/participate", headers=headers).status_code == 200
    make_claimable(user["id"], eid)
    assert client.get("/api/rewards/pending", headers=headers).get_json()["count"] == 1
    clock.advance(60)  # ends_at is exclusive: at ends_at the event has ended
    before = balance(user["id"])
    r = client.post(f"/api/events/{eid}/claim", headers=headers)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "EVENT_EXPIRED"
    assert balance(user["id"]) == before
    assert q("SELECT status FROM event_participations")[0]["status"] == "claimable"
    listed = client.get("/api/events?active=false", headers=headers).get_json()
    assert listed[0]["participation"]["status"] == "expired"
    assert client.get("/api/events?active=true", headers=headers).get_json() == []
    assert client.get("/api/rewards/pending", headers=headers).get_json()["count"] == 0


def test_claim_with_idempotency_key_replays_the_original_response(client, player):
    user, headers = player
    eid = create_event([{"type": "plays", "target": 1}], [{"type": "gold", "amount": 300}])
    client.post(f"/api/events/{eid}/participate", headers=headers)
    make_claimable(user["id"], eid)
    h = {**headers, "X-Idempotency-Key": "claim-1"}
    first = client.post(f"/api/events/{eid}/claim", headers=h)
    second = client.post(f"/api/events/{eid}/claim", headers=h)
    assert first.status_code == second.status_code == 200
    assert second.headers.get("Idempotent-Replay") == "true"
    assert second.get_json() == first.get_json()
    assert balance(user["id"]) == 10_300


@pytest.mark.parametrize(
    ("starts", "ends", "code", "status"),
    [(3600, 7200, "NOT_STARTED", 409), (-7200, -3600, "EVENT_EXPIRED", 409)],
)
def test_joining_outside_the_window_is_refused_and_writes_nothing(
    client, player, starts, ends, code, status
):
    _, headers = player
    eid = create_event([{"type": "plays", "target": 1}], starts_in_s=starts, ends_in_s=ends)
    r = client.post(f"/api/events/{eid}/participate", headers=headers)
    assert r.status_code == status and r.get_json()["error"]["code"] == code
    assert q("SELECT * FROM event_participations") == []
    assert q("SELECT * FROM outbox WHERE event_type = 'event.participate'") == []


def test_unknown_event_is_404_and_tier_gated_event_is_hidden_and_403(client, player):
    _, headers = player
    assert client.post("/api/events/999/participate", headers=headers).status_code == 404
    assert client.post("/api/events/999/claim", headers=headers).status_code == 404
    vip = create_event([{"type": "plays", "target": 1}], tier_required="VIP")
    assert client.get("/api/events", headers=headers).get_json() == []
    r = client.post(f"/api/events/{vip}/participate", headers=headers)
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "FORBIDDEN"
    vip_user = create_user(tier="VIP")
    vh = auth_headers(client, vip_user)
    assert [e["id"] for e in client.get("/api/events", headers=vh).get_json()] == [vip]
    assert client.post(f"/api/events/{vip}/participate", headers=vh).status_code == 200


def test_not_joined_claim_is_not_claimable(client, player):
    _, headers = player
    eid = create_event([{"type": "plays", "target": 1}])
    r = client.post(f"/api/events/{eid}/claim", headers=headers)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "NOT_CLAIMABLE"
    assert r.get_json()["error"]["details"]["status"] == "not_joined"


def test_daily_mission_progress_and_claim(client, player, drain):
    user, headers = player
    mid = create_mission(
        "daily", [{"type": "plays", "target": 2}], [{"type": "gold", "amount": 150}]
    )
    wid = create_mission("weekly", [{"type": "wins", "target": 50}])
    m = client.get("/api/missions", headers=headers).get_json()
    assert [x["id"] for x in m["daily"]] == [mid] and [x["id"] for x in m["weekly"]] == [wid]
    assert m["daily"][0]["progress"] == [{"type": "plays", "current": 0, "target": 2}]
    assert m["daily"][0]["resets_at"].endswith("T00:00:00Z")
    r = client.post(f"/api/missions/{mid}/claim", headers=headers)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "NOT_CLAIMABLE"

    spin(client, headers, 2)
    drain()
    m = client.get("/api/missions", headers=headers).get_json()
    assert m["daily"][0]["status"] == "claimable"
    before = balance(user["id"])
    r = client.post(f"/api/missions/{mid}/claim", headers=headers)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["mission_id"] == mid and r.get_json()["status"] == "claimed"
    assert balance(user["id"]) == before + 150 == ledger_sum(user["id"])
    um_id = q("SELECT id FROM user_missions WHERE mission_id = :m", m=mid)[0]["id"]
    assert q("SELECT idempotency_key FROM wallet_ledger WHERE source_type = 'mission'") == [
        {"idempotency_key": f"mission:{um_id}:{user['id']}"}
    ]
    r = client.post(f"/api/missions/{mid}/claim", headers=headers)
    assert r.get_json()["error"]["code"] == "ALREADY_CLAIMED"


def test_achievement_unlock_and_claim_with_item_reward(client, player, drain):
    user, headers = player
    aid = create_achievement(
        "first_play",
        [{"type": "plays", "target": 1}],
        [{"type": "gold", "amount": 25}, {"type": "item", "amount": 2, "code": "spin_ticket"}],
    )
    ach = client.get("/api/achievements", headers=headers).get_json()
    assert ach[0]["status"] == "locked" and ach[0]["progress"][0]["current"] == 0
    r = client.post(f"/api/achievements/{aid}/claim", headers=headers)
    assert r.get_json()["error"]["code"] == "NOT_CLAIMABLE"
    spin(client, headers, 1)
    drain()
    ach = client.get("/api/missions", headers=headers).get_json()["achievements"]
    assert ach[0]["status"] == "claimable" and ach[0]["unlocked_at"]
    before = balance(user["id"])
    r = client.post(f"/api/achievements/{aid}/claim", headers=headers)
    assert r.status_code == 200, r.get_json()
    assert balance(user["id"]) == before + 25
    assert q("SELECT item_code, quantity FROM user_items") == [
        {"item_code": "spin_ticket", "quantity": 2}
    ]
    r = client.post(f"/api/achievements/{aid}/claim", headers=headers)
    assert r.get_json()["error"]["code"] == "ALREADY_CLAIMED"
    profile = client.get("/api/profile", headers=headers).get_json()
    assert profile["achievements"][0]["status"] == "claimed"


def test_dashboard_sections_are_filled_and_follow_progress(client, player, drain):
    _, headers = player
    eid = create_event([{"type": "plays", "target": 1}])
    create_mission("daily", [{"type": "plays", "target": 1}])
    client.post(f"/api/events/{eid}/participate", headers=headers)
    d = client.get("/api/dashboard", headers=headers).get_json()
    assert [e["id"] for e in d["active_events"]] == [eid]
    assert d["active_events"][0]["participation"]["status"] == "active"
    assert len(d["missions"]["daily"]) == 1 and d["missions"]["weekly"] == []
    assert d["pending_rewards"] == 0
    spin(client, headers, 1)
    drain()  # the worker bumps the player's cache version: the next read re-renders
    d = client.get("/api/dashboard", headers=headers).get_json()
    assert d["pending_rewards"] == 2
    assert d["active_events"][0]["participation"]["status"] == "claimable"
    assert d["missions"]["daily"][0]["status"] == "claimable"
    # the dashboard reads its sections in one statement; they equal the standalone reads
    assert d["active_events"] == client.get("/api/events", headers=headers).get_json()
    standalone = client.get("/api/missions", headers=headers).get_json()
    assert d["missions"] == {"daily": standalone["daily"], "weekly": standalone["weekly"]}
    profile = client.get("/api/profile", headers=headers).get_json()
    assert [p["id"] for p in profile["active_participations"]] == [eid]
    client.post(f"/api/events/{eid}/claim", headers=headers)
    assert client.get("/api/dashboard", headers=headers).get_json()["pending_rewards"] == 1


def window_bounded_view_expires(client, rds, clock, player, view: str, listed) -> None:
    """Nothing about the player changes, but the event ends: the cached view is stored
    with a Redis TTL that ends with the window (not the cache's full minute), and the
    render after it no longer lists the event.

    The window is the application clock's; the expiry of the cached copy is Redis's own
    TTL clock, so after moving the application clock past the window the test waits —
    at most the half second the TTL can be — for Redis to drop the entry."""
    user, headers = player
    eid = create_event([{"type": "plays", "target": 1}], ends_in_s=0.5)
    assert client.post(f"/api/events/{eid}/participate", headers=headers).status_code == 200
    first = client.get(f"/api/{view}", headers=headers)
    assert listed(first.get_json()) == [eid]
    etag = {**headers, "If-None-Match": first.headers["ETag"]}
    # still the same view while the window is open (the clock stands still: a copy that
    # Redis already dropped renders the same body, the same ETag)
    assert client.get(f"/api/{view}", headers=etag).status_code == 304
    entry = view_key(user["id"], view)

    def stored_ttl_ms() -> list[int]:
        ttl = rds.pttl(entry)
        if ttl == -2:  # not stored yet (requests do not wait for the fill) or gone already:
            client.get(f"/api/{view}", headers=headers)  # same clock, same copy stored again
            return []
        return [ttl]

    [ttl_ms] = wait_for(stored_ttl_ms, what="the cached copy")
    assert ttl_ms != -1 and ttl_ms <= 500  # dies with the window, not after a minute
    clock.advance(0.5)
    wait_for(lambda: rds.exists(entry) == 0, what="Redis to expire the cached copy")
    later = client.get(f"/api/{view}", headers=etag)
    assert later.status_code == 200 and listed(later.get_json()) == []


def test_cached_dashboard_does_not_outlive_an_event_window(client, rds, clock, player):
    window_bounded_view_expires(
        client, rds, clock, player, "dashboard", lambda d: [e["id"] for e in d["active_events"]]
    )


def test_cached_profile_does_not_outlive_an_event_window(client, rds, clock, player):
    """The profile lists the player's running events (``active_participations``): its
    cached copy expires when the window closes, like the dashboard's."""
    window_bounded_view_expires(
        client,
        rds,
        clock,
        player,
        "profile",
        lambda p: [e["id"] for e in p["active_participations"]],
    )
