"""Daily streak against real PostgreSQL/Redis: rewards through the ledger, once per UTC
day, the grace rule, status, level-up, concurrency and idempotent replay.

Day changes are simulated by calling the service with explicit ``today`` values; the
same-day flows go through HTTP (which uses the real UTC day)."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from ccweb.db import autocommit, in_transaction
from ccweb.errors import Conflict, NotFound
from ccweb.streak import service
from tests.factories import auth_headers, balance, create_user, ledger_sum

D0 = date(2026, 3, 1)
CAPPED = {"gold": 6800, "xp": 775}


def q(sql: str, **params):
    return in_transaction(lambda s: s.execute(text(sql), params).mappings().all())


def claim_on(uid: int, day: date) -> dict:
    return in_transaction(lambda s: service.claim(s, uid, day))


def status_on(uid: int, day: date) -> dict:
    with autocommit() as conn:
        return service.status(conn, uid, day)


def day(n: int) -> date:
    return D0 + timedelta(days=n)


def streak_row(uid: int) -> dict:
    return dict(q("SELECT * FROM streaks WHERE user_id = :u", u=uid)[0])


def events_of(event_type: str) -> list[dict]:
    rows = q("SELECT envelope FROM outbox WHERE event_type = :t ORDER BY id", t=event_type)
    return [r["envelope"] for r in rows]


def streak_ledger(uid: int) -> list[dict]:
    return [
        dict(r)
        for r in q(
            "SELECT delta_gold, source_type, idempotency_key FROM wallet_ledger"
            " WHERE user_id = :u AND source_type = 'streak' ORDER BY id",
            u=uid,
        )
    ]


def xp_level(uid: int) -> tuple[int, int]:
    r = q("SELECT experience_points, level FROM users WHERE id = :u", u=uid)[0]
    return r["experience_points"], r["level"]


@pytest.fixture
def player(client):
    user = create_user(gold=1000)
    return user, auth_headers(client, user)


def test_reward_formula():
    """Day n pays 1000+200(n-1) gold and 50+25(n-1) xp, with n capped at 30."""
    assert service.reward_for(1) == {"gold": 1000, "xp": 50}
    assert service.reward_for(2) == {"gold": 1200, "xp": 75}
    assert service.reward_for(30) == CAPPED
    assert service.reward_for(31) == service.reward_for(365) == CAPPED
    with pytest.raises(ValueError):
        service.reward_for(0)


def test_day_one_pays_through_the_ledger(client, player):
    """The first HTTP claim pays 1000 gold / 50 xp: balance before+1000 == response ==
    ledger sum, one ledger row with source_type 'streak' and the day's key, and a
    streak.claim outbox event with count, day_index, reward and grace_used."""
    user, headers = player
    uid = user["id"]
    before = balance(uid)
    resp = client.post("/api/streak/claim", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body == {
        "streak_count": 1,
        "day_index": 1,
        "reward": {"gold": 1000, "xp": 50},
        "gold_balance": before + 1000,
        "level": 1,
        "experience_points": 50,
        "level_up": False,
        "grace_used": False,
    }
    assert balance(uid) == before + 1000 == ledger_sum(uid)
    today = service.utc_today()
    assert streak_ledger(uid) == [
        {
            "delta_gold": 1000,
            "source_type": "streak",
            "idempotency_key": f"streak:{uid}:{today.isoformat()}",
        }
    ]
    assert xp_level(uid) == (50, 1)
    [ev] = events_of("streak.claim")
    assert ev["user_id"] == uid
    assert ev["payload"] == {
        "count": 1,
        "day_index": 1,
        "reward": {"gold": 1000, "xp": 50},
        "grace_used": False,
        # the player's state after the claim (what their sockets are pushed)
        "gold_balance": 2000,
        "experience_points": 50,
        "level": 1,
    }
    row = streak_row(uid)
    assert (row["count"], row["last_claim_date"], row["longest"]) == (1, today, 1)


def test_second_claim_same_day_is_409_and_grants_nothing(client, player):
    """A second claim on the same UTC day gets 409 ALREADY_CLAIMED in the SPEC §2 error
    shape; balance, XP, ledger, streak row and outbox stay exactly as after the first."""
    user, headers = player
    uid = user["id"]
    assert client.post("/api/streak/claim", headers=headers).status_code == 200
    after_first = (balance(uid), xp_level(uid), streak_ledger(uid), streak_row(uid))
    again = client.post("/api/streak/claim", headers=headers)
    assert again.status_code == 409
    err = again.get_json()["error"]
    assert err["code"] == "ALREADY_CLAIMED" and err["message"] and "details" in err
    assert (balance(uid), xp_level(uid), streak_ledger(uid), streak_row(uid)) == after_first
    assert balance(uid) == ledger_sum(uid)
    assert len(events_of("streak.claim")) == 1


def test_day_two_after_a_day_change_pays_1200_75():
    """Claiming on the next UTC day continues the streak and pays day 2: 1200 / 75."""
    uid = create_user(gold=0)["id"]
    claim_on(uid, day(0))
    r = claim_on(uid, day(1))
    assert (r["streak_count"], r["day_index"], r["reward"]) == (2, 2, {"gold": 1200, "xp": 75})
    assert r["gold_balance"] == 2200 == balance(uid) == ledger_sum(uid)
    assert r["experience_points"] == 125 and r["grace_used"] is False
    assert [x["delta_gold"] for x in streak_ledger(uid)] == [1000, 1200]


def test_day_30_and_beyond_pay_the_capped_reward():
    """Day 30, 31 and 32 all pay 6800 / 775 while the count (and longest) keep growing;
    the ledger explains the total."""
    uid = create_user(gold=0)["id"]
    results = [claim_on(uid, day(i)) for i in range(32)]
    assert [r["streak_count"] for r in results] == list(range(1, 33))
    assert results[28]["reward"] == {"gold": 6600, "xp": 750}  # day 29
    for r in results[29:]:  # days 30, 31, 32
        assert r["reward"] == CAPPED and r["day_index"] == r["streak_count"]
    total = sum(service.reward_for(n)["gold"] for n in range(1, 33))
    assert balance(uid) == total == ledger_sum(uid) == results[-1]["gold_balance"]
    row = streak_row(uid)
    assert (row["count"], row["longest"]) == (32, 32)
    assert status_on(uid, day(32))["next_reward"] == CAPPED


def test_one_missed_day_uses_the_grace():
    """Claim, claim, miss a day, claim: the grace covers the missed day, the streak
    continues (day 3 pays 1400 / 100), grace_used_on records the missed day and status
    then reports no grace available."""
    uid = create_user(gold=0)["id"]
    claim_on(uid, day(0))
    claim_on(uid, day(1))
    assert status_on(uid, day(3)) == {
        "count": 2,
        "claimed_today": False,
        "next_reward": {"gold": 1400, "xp": 100},
        "grace_available": True,
    }
    r = claim_on(uid, day(3))
    assert (r["streak_count"], r["reward"], r["grace_used"]) == (3, {"gold": 1400, "xp": 100}, True)
    assert streak_row(uid)["grace_used_on"] == day(2)
    assert events_of("streak.claim")[-1]["payload"]["grace_used"] is True
    st = status_on(uid, day(3))
    assert st["grace_available"] is False and st["count"] == 3 and st["claimed_today"] is True


def test_second_missed_day_within_30_days_restarts():
    """After a grace, missing one day again within the window restarts the streak at
    day 1 (1000 / 50) and the recorded grace stays on the first missed day."""
    uid = create_user(gold=0)["id"]
    claim_on(uid, day(0))
    claim_on(uid, day(2))  # grace covers day 1
    claim_on(uid, day(3))
    assert status_on(uid, day(5))["count"] == 0  # a miss on day 4 breaks it now
    r = claim_on(uid, day(5))
    assert (r["streak_count"], r["reward"], r["grace_used"]) == (1, {"gold": 1000, "xp": 50}, False)
    row = streak_row(uid)
    assert (row["grace_used_on"], row["longest"]) == (day(1), 3)


def test_grace_is_available_again_after_30_days():
    """Exact window: a grace that covered missed day M is available again for claims on
    M+30 or later (grace_used_on <= today - 30). A claim on M+29 after a missed day
    restarts; a claim on M+30 after a missed day continues with the grace."""
    m = day(1)
    early, late = create_user(gold=0)["id"], create_user(gold=0)["id"]
    for uid in (early, late):
        claim_on(uid, day(0))
        assert claim_on(uid, day(2))["grace_used"] is True  # covers M = day 1
    assert status_on(early, m + timedelta(days=29))["grace_available"] is False
    assert status_on(early, m + timedelta(days=30))["grace_available"] is True

    claim_on(early, m + timedelta(days=27))  # restart (count 1), then miss M+28
    r = claim_on(early, m + timedelta(days=29))
    assert (r["streak_count"], r["grace_used"]) == (1, False)
    assert streak_row(early)["grace_used_on"] == m

    claim_on(late, m + timedelta(days=28))  # restart (count 1), then miss M+29
    r = claim_on(late, m + timedelta(days=30))
    assert (r["streak_count"], r["grace_used"], r["reward"]) == (2, True, service.reward_for(2))
    assert streak_row(late)["grace_used_on"] == m + timedelta(days=29)


def test_two_missed_days_restart_and_keep_the_grace():
    """Missing two days restarts at day 1 even with a grace available; the grace is not
    spent on a break it cannot cover."""
    uid = create_user(gold=0)["id"]
    claim_on(uid, day(0))
    claim_on(uid, day(1))
    r = claim_on(uid, day(4))
    assert (r["streak_count"], r["reward"], r["grace_used"]) == (1, {"gold": 1000, "xp": 50}, False)
    assert streak_row(uid)["grace_used_on"] is None
    assert status_on(uid, day(4))["grace_available"] is True
    assert balance(uid) == 1000 + 1200 + 1000 == ledger_sum(uid)


def test_status_before_and_after_claim(client, player):
    """Status over HTTP before and after today's claim, then (service, later days) the
    effective count: kept while the streak can continue (grace included), 0 once the
    next claim would restart at day 1."""
    user, headers = player
    uid = user["id"]
    before = client.get("/api/streak/status", headers=headers)
    assert before.status_code == 200
    assert before.get_json() == {
        "count": 0,
        "claimed_today": False,
        "next_reward": {"gold": 1000, "xp": 50},
        "grace_available": True,
    }
    assert client.post("/api/streak/claim", headers=headers).status_code == 200
    assert client.get("/api/streak/status", headers=headers).get_json() == {
        "count": 1,
        "claimed_today": True,
        "next_reward": {"gold": 1200, "xp": 75},  # tomorrow's
        "grace_available": True,
    }
    today = service.utc_today()
    tomorrow = status_on(uid, today + timedelta(days=1))
    assert (tomorrow["count"], tomorrow["claimed_today"]) == (1, False)
    assert tomorrow["next_reward"] == {"gold": 1200, "xp": 75}
    graced = status_on(uid, today + timedelta(days=2))  # one missed day, grace available
    assert (graced["count"], graced["next_reward"]) == (1, {"gold": 1200, "xp": 75})
    broken = status_on(uid, today + timedelta(days=3))
    assert broken == {
        "count": 0,
        "claimed_today": False,
        "next_reward": {"gold": 1000, "xp": 50},
        "grace_available": True,
    }
    assert client.get("/api/streak/status").status_code == 401


def test_status_is_zero_after_a_break_once_the_grace_is_spent():
    """With the grace already used, a single missed day breaks the streak: status
    shows count 0 and the day-1 reward."""
    uid = create_user(gold=0)["id"]
    claim_on(uid, day(0))
    claim_on(uid, day(2))  # grace
    claim_on(uid, day(3))
    st = status_on(uid, day(5))
    assert st == {
        "count": 0,
        "claimed_today": False,
        "next_reward": {"gold": 1000, "xp": 50},
        "grace_available": False,
    }


def test_level_up_is_surfaced():
    """Days 1-5 give 50+75+100+125+150 = 500 XP: day 5 crosses into level 2, the
    response says level_up and a user.level_up outbox event is written (only once)."""
    uid = create_user(gold=0)["id"]
    results = [claim_on(uid, day(i)) for i in range(5)]
    assert [r["level_up"] for r in results] == [False] * 4 + [True]
    assert (results[-1]["experience_points"], results[-1]["level"]) == (500, 2)
    assert xp_level(uid) == (500, 2)
    [ev] = events_of("user.level_up")
    assert ev["user_id"] == uid
    assert ev["payload"]["level"] == 2 and ev["payload"]["previous_level"] == 1
    assert ev["payload"]["source"] == "streak.claim"


def test_concurrent_claims_pay_once(app):
    """20 simultaneous HTTP claims on the same day: exactly one 200, 19 × 409
    ALREADY_CLAIMED; one ledger row, one event, and the ledger explains the balance."""
    user = create_user(gold=1000)
    uid = user["id"]
    headers = auth_headers(app.test_client(), user)
    barrier = threading.Barrier(20)
    results: list[tuple[int, str | None]] = []
    lock = threading.Lock()

    def go() -> None:
        c = app.test_client()
        barrier.wait()
        resp = c.post("/api/streak/claim", headers=headers)
        body = resp.get_json()
        with lock:
            results.append((resp.status_code, (body.get("error") or {}).get("code")))

    threads = [threading.Thread(target=go) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=str) == [(200, None)] + [(409, "ALREADY_CLAIMED")] * 19
    assert len(streak_ledger(uid)) == 1
    assert balance(uid) == 2000 == ledger_sum(uid)
    assert xp_level(uid) == (50, 1)
    assert len(events_of("streak.claim")) == 1
    assert streak_row(uid)["count"] == 1


def test_idempotency_key_replays_the_claim(client, player):
    """The same X-Idempotency-Key replays the original body with Idempotent-Replay:
    true and pays nothing more; a new key on the same day is 409 ALREADY_CLAIMED."""
    user, headers = player
    uid = user["id"]
    h = {**headers, "X-Idempotency-Key": "streak-1"}
    first = client.post("/api/streak/claim", headers=h)
    assert first.status_code == 200 and "Idempotent-Replay" not in first.headers
    again = client.post("/api/streak/claim", headers=h)
    assert again.status_code == 200
    assert again.headers["Idempotent-Replay"] == "true"
    assert again.get_json() == first.get_json()
    assert len(streak_ledger(uid)) == 1
    assert balance(uid) == first.get_json()["gold_balance"] == ledger_sum(uid)
    other = client.post("/api/streak/claim", headers={**headers, "X-Idempotency-Key": "streak-2"})
    assert other.status_code == 409 and other.get_json()["error"]["code"] == "ALREADY_CLAIMED"


def test_existing_ledger_key_is_already_claimed():
    """Second guard: if the day's ledger key exists although the streak row does not
    say so (e.g. the row was reset by hand), the claim is 409 and writes nothing."""
    uid = create_user(gold=0)["id"]
    claim_on(uid, day(0))
    in_transaction(
        lambda s: s.execute(
            text("UPDATE streaks SET last_claim_date = NULL, count = 0 WHERE user_id = :u"),
            {"u": uid},
        )
    )
    with pytest.raises(Conflict) as exc:
        claim_on(uid, day(0))
    assert exc.value.code == "ALREADY_CLAIMED"
    assert balance(uid) == 1000 == ledger_sum(uid)
    assert len(events_of("streak.claim")) == 1


def test_unknown_user_is_not_found():
    """Claiming for a user that does not exist raises NotFound and creates no row."""
    with pytest.raises(NotFound):
        claim_on(999_999, D0)
    assert q("SELECT count(*) AS n FROM streaks")[0]["n"] == 0


def test_openapi_documents_the_streak_endpoints(client):
    """Both endpoints appear in the OpenAPI document with their response schemas."""
    doc = client.get("/api/openapi.json").get_json()
    claim = doc["paths"]["/api/streak/claim"]["post"]
    assert {"200", "401", "409"} <= set(claim["responses"])
    assert "/api/streak/status" in doc["paths"]
