"""The ``progress`` group against real Redis/PostgreSQL: gameplay events advance
events, missions and achievements exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from ccweb import events
from ccweb.db import in_transaction
from ccweb.liveops.rules import period_start
from tests.factories import (
    auth_headers,
    create_achievement,
    create_event,
    create_mission,
    create_user,
)
from tests.worker._support import emit_event, progress_consumer, run_burst


def q(sql: str, **params):
    return in_transaction(lambda s: [dict(r) for r in s.execute(text(sql), params).mappings()])


def join(user_id: int, event_id: int) -> None:
    from ccweb.liveops.service import participate

    in_transaction(lambda s: participate(s, user_id, event_id, datetime.now(UTC)))


def participation(user_id: int, event_id: int) -> dict:
    return q(
        "SELECT status, progress, progress_version, last_progress_at FROM event_participations"
        " WHERE user_id = :u AND event_id = :e",
        u=user_id,
        e=event_id,
    )[0]


def round_event(user_id: int, game: str = "slot", bet: int = 100, payout: int = 0, **kw):
    outcome = "win" if payout > bet else ("draw" if payout == bet else "lose")
    return emit_event(
        user_id,
        events.GAME_ROUND,
        round_id=kw.get("round_id", 1),
        game_type=game,
        bet=bet,
        payout=payout,
        gold_delta=payout - bet,
        outcome=outcome,
        session_id=None,
    )


def test_rounds_advance_each_requirement_by_its_own_measure(settings, rds):
    uid = create_user()["id"]
    eid = create_event(
        [
            {"type": "plays", "target": 10},
            {"type": "wins", "target": 10},
            {"type": "spend_gold", "target": 10_000},
            {"type": "win_gold", "target": 10_000},
            {"type": "plays", "game_type": "rps", "target": 10},
        ]
    )
    join(uid, eid)
    round_event(uid, bet=100, payout=0)
    round_event(uid, bet=200, payout=500)
    round_event(uid, game="rps", bet=50, payout=100)
    run_burst(progress_consumer(rds, settings))
    p = participation(uid, eid)
    assert p["progress"] == [3, 2, 350, 600, 1]
    assert p["status"] == "active" and p["progress_version"] >= 1
    assert p["last_progress_at"] is not None


def test_progress_caps_at_target_and_becomes_claimable_once_every_target_is_met(settings, rds):
    uid = create_user()["id"]
    eid = create_event([{"type": "plays", "target": 2}, {"type": "wins", "target": 1}])
    join(uid, eid)
    for _ in range(3):
        round_event(uid, payout=0)
    run_burst(progress_consumer(rds, settings))
    assert participation(uid, eid)["progress"] == [2, 0]
    assert participation(uid, eid)["status"] == "active"
    round_event(uid, payout=300)
    run_burst(progress_consumer(rds, settings))
    p = participation(uid, eid)
    assert p["progress"] == [2, 1] and p["status"] == "claimable"


def test_only_progress_after_joining_counts_and_other_players_do_not_count(settings, rds):
    uid, other = create_user()["id"], create_user()["id"]
    eid = create_event([{"type": "plays", "target": 100}])
    round_event(uid)  # before joining
    join(uid, eid)
    join(other, eid)
    round_event(uid)
    round_event(uid)
    run_burst(progress_consumer(rds, settings))
    assert participation(uid, eid)["progress"] == [2]
    assert participation(other, eid)["progress"] == [0]
    assert participation(other, eid)["progress_version"] == 0


def test_redelivered_events_never_count_twice(settings, rds):
    """The same envelope published again (a relay re-publish or an XAUTOCLAIM after a
    crash) is skipped by the processed-events record written with the progress."""
    uid = create_user()["id"]
    eid = create_event([{"type": "plays", "target": 100}])
    join(uid, eid)
    env = round_event(uid)
    run_burst(progress_consumer(rds, settings))
    from ccweb.outbox.publisher import Publisher

    rds.delete(*rds.keys("*seen*"))  # forget the publish dedupe, force a second copy
    assert Publisher(rds).publish_envelopes([env], "relay") == [True]
    run_burst(progress_consumer(rds, settings))
    assert participation(uid, eid)["progress"] == [1]
    assert q("SELECT count(*) AS n FROM processed_events WHERE consumer = 'progress'")[0]["n"] == 1


def test_missions_are_per_period_and_count_game_filtered_requirements(settings, rds):
    uid = create_user()["id"]
    daily = create_mission("daily", [{"type": "plays", "game_type": "slot", "target": 5}])
    weekly = create_mission("weekly", [{"type": "spend_gold", "target": 1000}])
    round_event(uid, game="slot", bet=100)
    round_event(uid, game="crash", bet=300)
    run_burst(progress_consumer(rds, settings))
    today = datetime.now(UTC).date()
    rows = {r["mission_id"]: r for r in q("SELECT * FROM user_missions WHERE user_id = :u", u=uid)}
    assert rows[daily]["progress"] == [1] and rows[daily]["period_start"] == today
    assert rows[weekly]["progress"] == [400]
    assert rows[weekly]["period_start"] == period_start("weekly", today)


def test_a_new_day_starts_a_fresh_daily_mission_row(settings, rds):
    """Daily missions reset at 00:00 UTC: an event stamped tomorrow advances a new row
    and leaves today's untouched."""
    uid = create_user()["id"]
    mid = create_mission("daily", [{"type": "plays", "target": 5}])
    round_event(uid)
    run_burst(progress_consumer(rds, settings))
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    from ccweb.effects import add

    env = events.make_envelope(
        events.GAME_ROUND,
        uid,
        {"round_id": 9, "game_type": "slot", "bet": 10, "payout": 0, "outcome": "lose"},
    )
    env["ts"] = events.iso(tomorrow)
    from ccweb.db import unit_of_work

    with unit_of_work() as s:
        add(s, env)
    run_burst(progress_consumer(rds, settings))
    rows = q(
        "SELECT period_start, progress FROM user_missions WHERE user_id = :u AND mission_id = :m"
        " ORDER BY period_start",
        u=uid,
        m=mid,
    )
    assert [(r["period_start"], r["progress"]) for r in rows] == [
        (datetime.now(UTC).date(), [1]),
        (tomorrow.date(), [1]),
    ]


def test_streak_claims_set_streak_days_and_unlock_achievements(client, settings, rds):
    user = create_user()
    eid = create_event([{"type": "streak_days", "target": 1}], type="progression")
    ach = create_achievement("streak_1", [{"type": "streak_days", "target": 1}])
    join(user["id"], eid)
    r = client.post("/api/streak/claim", headers=auth_headers(client, user))
    assert r.status_code == 200
    run_burst(progress_consumer(rds, settings))
    assert participation(user["id"], eid)["status"] == "claimable"
    unlocked = q("SELECT achievement_id FROM user_achievements WHERE user_id = :u", u=user["id"])
    assert [r["achievement_id"] for r in unlocked] == [ach]
    types = [r["event_type"] for r in q("SELECT event_type FROM outbox ORDER BY id")]
    assert events.EVENT_PROGRESS in types and events.ACHIEVEMENT_UNLOCKED in types


def test_achievements_unlock_from_game_stats_once(client, settings, rds):
    user = create_user(gold=10_000)
    headers = auth_headers(client, user)
    create_achievement("plays_3", [{"type": "plays", "target": 3}])
    create_achievement("plays_4", [{"type": "plays", "target": 4}])
    for _ in range(3):
        assert (
            client.post("/api/games/slot/spin", json={"bet": 10}, headers=headers).status_code
            == 200
        )
    run_burst(progress_consumer(rds, settings))
    run_burst(progress_consumer(rds, settings))
    got = q(
        "SELECT a.code FROM user_achievements ua JOIN achievements a ON a.id = ua.achievement_id"
        " WHERE ua.user_id = :u",
        u=user["id"],
    )
    assert [r["code"] for r in got] == ["plays_3"]
    unlock_events = q("SELECT envelope FROM outbox WHERE event_type = 'achievement.unlocked'")
    assert len(unlock_events) == 1
    assert unlock_events[0]["envelope"]["payload"]["code"] == "plays_3"


def test_progress_bumps_the_dashboard_version(settings, rds):
    from ccweb.player_versions import version_key

    uid = create_user()["id"]
    eid = create_event([{"type": "plays", "target": 5}])
    join(uid, eid)
    before = int(rds.get(version_key(uid)) or 0)
    round_event(uid)
    run_burst(progress_consumer(rds, settings))
    assert int(rds.get(version_key(uid)) or 0) > before


def test_activity_does_not_count_the_progress_events_derived_from_plays(
    settings, rds, make_consumer
):
    from tests.worker._support import activity_events

    uid = create_user()["id"]
    eid = create_event([{"type": "plays", "target": 5}])
    join(uid, eid)  # event.participate: the player's own action
    round_event(uid)
    round_event(uid)
    run_burst(progress_consumer(rds, settings))  # emits event.progress for the player
    assert any(r["event_type"] == events.EVENT_PROGRESS for r in q("SELECT event_type FROM outbox"))
    run_burst(make_consumer())  # the activity group
    assert activity_events(uid) == 3


def test_parallel_consumers_of_the_group_never_lose_an_update(settings, rds):
    """Three consumers of the group run at once over interleaved rounds of the same
    players (each batch locks the rows it updates): every round counts exactly once."""
    import threading

    players = [create_user()["id"] for _ in range(3)]
    eid = create_event(
        [{"type": "plays", "target": 10**9}, {"type": "spend_gold", "target": 10**12}]
    )
    mid = create_mission("daily", [{"type": "plays", "target": 10**9}])
    for uid in players:
        join(uid, eid)
    small = settings.with_overrides(worker_batch=7, worker_linger_ms=0)
    for i in range(60):
        for uid in players:
            round_event(uid, bet=10 + i)
    consumers = [progress_consumer(rds, small, f"c{n}") for n in range(3)]
    threads = [threading.Thread(target=run_burst, args=(c,)) for c in consumers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for uid in players:
        assert participation(uid, eid)["progress"] == [60, sum(10 + i for i in range(60))]
        row = q(
            "SELECT progress FROM user_missions WHERE user_id = :u AND mission_id = :m",
            u=uid,
            m=mid,
        )
        assert row[0]["progress"] == [60]
    handled = q("SELECT count(*) AS n FROM processed_events WHERE consumer = 'progress'")
    assert handled[0]["n"] == 180
