"""A retried money request never applies twice: the stored response commits with the
effect (same transaction, or for game rounds the same statement), so a crash right
after the commit — before the response left, before any after-commit effect — still
leaves a retry nothing to do but replay. Here the crash is a failpoint that raises right
after the commit (the real SIGKILL version is tests/faults/test_retry_after_crash.py)."""

from __future__ import annotations

import threading

import pytest
from flask import g
from sqlalchemy import text

from ccweb import failpoints
from ccweb.db import in_transaction, unit_of_work
from ccweb.games import config, service
from ccweb.games.engines import slot
from ccweb.idempotency import service as idempotency
from ccweb.wallet import ledger
from tests.factories import auth_headers, balance, create_user, ledger_sum


def q(sql: str, **params):
    with unit_of_work() as s:
        return [dict(r) for r in s.execute(text(sql), params).mappings()]


def completed_key(user_id: int, key: str) -> None:
    """A key some other request completed (as if it won a race with this one)."""
    with unit_of_work() as s:
        s.execute(
            text(
                "INSERT INTO idempotency_keys (user_id, key, endpoint, request_hash, status_code,"
                " response, completed_at) VALUES (:u, :k, 'x', 'h', 200, '{}', now())"
            ),
            {"u": user_id, "k": key},
        )


@pytest.fixture
def crash_after_commit():
    """Call it to make the next after-commit point raise, as a process dying there would
    stop: the data is committed, the effects and the response are not sent."""
    yield lambda: failpoints.reset("after_commit=raise@1")
    failpoints.reset("")


MONEY_REQUESTS = {
    "spin": ("/api/games/slot/spin", {"bet": 100}),
    "gacha": ("/api/games/gacha/pull", {"count": 1}),
    "streak": ("/api/streak/claim", None),
}


@pytest.mark.parametrize("name", sorted(MONEY_REQUESTS))
def test_a_retry_after_a_crash_past_the_commit_replays_the_original(
    client, crash_after_commit, name
):
    user = create_user(gold=10_000)
    headers = {**auth_headers(client, user), "X-Idempotency-Key": f"k-{name}"}
    path, body = MONEY_REQUESTS[name]
    crash_after_commit()
    with pytest.raises(failpoints.FailpointError):  # the client never sees the result
        client.post(path, json=body, headers=headers)
    stored = q("SELECT status_code, response FROM idempotency_keys")
    assert [r["status_code"] for r in stored] == [200]
    entries_before = q("SELECT count(*) AS n FROM wallet_ledger")[0]["n"]

    retry = client.post(path, json=body, headers=headers)
    assert retry.status_code == 200
    assert retry.headers["Idempotent-Replay"] == "true"
    assert retry.get_json() == stored[0]["response"]
    assert retry.get_json()["gold_balance"] == balance(user["id"]) == ledger_sum(user["id"])
    assert q("SELECT count(*) AS n FROM wallet_ledger")[0]["n"] == entries_before
    if name != "streak":
        assert q("SELECT count(*) AS n FROM game_rounds")[0]["n"] == 1


def test_a_retry_after_a_crash_replays_an_admin_adjustment(client, crash_after_commit):
    player = create_user(gold=0)
    admin = create_user(site_id="boss", is_admin=True)
    headers = {**auth_headers(client, admin, admin=True), "X-Idempotency-Key": "adj-crash"}
    path, body = f"/api/admin/users/{player['id']}/gold", {"delta": 70, "reason": "refund"}
    crash_after_commit()
    with pytest.raises(failpoints.FailpointError):
        client.post(path, json=body, headers=headers)
    retry = client.post(path, json=body, headers=headers)
    assert retry.status_code == 200 and retry.headers["Idempotent-Replay"] == "true"
    assert retry.get_json()["gold_balance"] == 70 == balance(player["id"])
    assert q("SELECT count(*) AS n FROM wallet_ledger WHERE user_id = :u", u=player["id"]) == [
        {"n": 1}
    ]


def test_a_spin_stores_exactly_the_response_it_returns(client):
    user = create_user(gold=10_000)
    headers = {**auth_headers(client, user), "X-Idempotency-Key": "same"}
    first = client.post(
        "/api/games/crash/bet", json={"bet": 100, "auto_cashout": 2.5}, headers=headers
    )
    assert first.status_code == 200 and "Idempotent-Replay" not in first.headers
    (row,) = q("SELECT status_code, response, completed_at FROM idempotency_keys")
    assert row["status_code"] == 200 and row["completed_at"] is not None
    assert row["response"] == first.get_json()


def test_an_effect_whose_key_was_completed_meanwhile_rolls_back(client):
    """A stale claim taken over while its original still runs: whichever commits second
    finds the key completed, and its whole transaction (money included) rolls back."""
    user = create_user(gold=500)
    claim = idempotency.Claim(user["id"], "raced")
    completed_key(user["id"], "raced")

    def work(s):
        ledger.apply(
            s, user_id=user["id"], delta=100, source_type="test", idempotency_key="raced-effect"
        )
        idempotency.complete(s, claim, {"ok": True})

    with pytest.raises(idempotency.AlreadyCompleted):
        in_transaction(work)
    assert balance(user["id"]) == 500
    assert q("SELECT count(*) AS n FROM wallet_ledger WHERE idempotency_key = 'raced-effect'") == [
        {"n": 0}
    ]


def test_a_round_for_a_completed_key_is_refused_by_its_own_statement(app):
    """The round's guard requires the key to be open: even past the decorator (a takeover
    racing the original), a completed key plays nothing."""
    user = create_user(gold=1_000)
    completed_key(user["id"], "done")
    cfg = config.DEFAULT_SLOT
    with app.test_request_context():
        g.idempotency = idempotency.Claim(user["id"], "done")
        with pytest.raises(idempotency.AlreadyCompleted):
            service.play(user["id"], "slot", lambda rng, _p: slot.play(cfg, rng, 10))
    assert balance(user["id"]) == 1_000
    assert q("SELECT count(*) AS n FROM game_rounds") == [{"n": 0}]


def test_a_stale_claim_of_a_crashed_process_is_taken_over(client):
    """A process that died before committing left the key "in progress": nothing was
    applied, so after the stale window a retry plays (once)."""
    user = create_user(gold=1_000)
    headers = {**auth_headers(client, user), "X-Idempotency-Key": "orphan"}
    body = {"bet": 10}
    # what the dead process's claim looked like: same request, no response, long ago
    first = client.post("/api/games/slot/spin", json=body, headers={**headers})
    assert first.status_code == 200
    with unit_of_work() as s:
        s.execute(
            text(
                "UPDATE idempotency_keys SET status_code = NULL, response = NULL,"
                " created_at = now() - make_interval(secs => :age)"
            ),
            {"age": idempotency.stale_after_s() + 1},
        )
        s.execute(text("TRUNCATE game_rounds"))
    again = client.post("/api/games/slot/spin", json=body, headers=headers)
    assert again.status_code == 200 and "Idempotent-Replay" not in again.headers
    young = client.post("/api/games/slot/spin", json=body, headers=headers)
    assert young.headers["Idempotent-Replay"] == "true"


def test_a_fresh_claim_still_running_is_409_in_progress(client):
    user = create_user(gold=1_000)
    headers = {**auth_headers(client, user), "X-Idempotency-Key": "busy"}
    first = client.post("/api/games/slot/spin", json={"bet": 10}, headers=headers)
    with unit_of_work() as s:
        s.execute(text("UPDATE idempotency_keys SET status_code = NULL, response = NULL"))
    r = client.post("/api/games/slot/spin", json={"bet": 10}, headers=headers)
    assert first.status_code == 200
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "IN_PROGRESS"


def test_concurrent_retries_of_one_spin_play_it_once(app, settings):
    """Twelve clients send the same spin with the same key at once: one round, one
    ledger effect; every answer is that round or 409 IN_PROGRESS."""
    user = create_user(gold=10_000)
    client0 = app.test_client()
    headers = {**auth_headers(client0, user), "X-Idempotency-Key": "storm"}
    answers: list[tuple[int, dict]] = []
    barrier = threading.Barrier(12)

    def go():
        c = app.test_client()
        barrier.wait()
        r = c.post("/api/games/slot/spin", json={"bet": 100}, headers=headers)
        answers.append((r.status_code, r.get_json()))

    threads = [threading.Thread(target=go) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert q("SELECT count(*) AS n FROM game_rounds") == [{"n": 1}]
    (round_id,) = [r["id"] for r in q("SELECT id FROM game_rounds")]
    ok = [body for status, body in answers if status == 200]
    busy = [body for status, body in answers if status == 409]
    assert len(ok) + len(busy) == 12 and ok
    assert all(b["round_id"] == round_id for b in ok)
    assert all(b["error"]["code"] == "IN_PROGRESS" for b in busy)
    assert balance(user["id"]) == ledger_sum(user["id"]) == ok[0]["gold_balance"]


# -- session_id: only the caller's own open session of that game -------------------------


@pytest.fixture
def sessions(client):
    me, other = create_user(gold=5_000), create_user(gold=5_000)
    h_me, h_other = auth_headers(client, me), auth_headers(client, other)

    def start(headers, game):
        r = client.post("/api/games/sessions/start", json={"game_type": game}, headers=headers)
        return r.get_json()["session_id"]

    ended = start(h_me, "slot")
    client.post(f"/api/games/sessions/{ended}/end", headers=h_me)
    return {
        "me": me,
        "headers": h_me,
        "mine": start(h_me, "slot"),
        "gacha": start(h_me, "gacha"),
        "ended": ended,
        "theirs": start(h_other, "slot"),
    }


@pytest.mark.parametrize(
    ("which", "status", "code"),
    [
        ("unknown", 404, "NOT_FOUND"),
        ("theirs", 404, "NOT_FOUND"),
        ("ended", 409, "ALREADY_ENDED"),
        ("gacha", 409, "SESSION_MISMATCH"),
    ],
)
def test_a_round_in_a_session_that_is_not_the_players_open_one_applies_nothing(
    client, sessions, which, status, code
):
    sid = 999_999 if which == "unknown" else sessions[which]
    uid = sessions["me"]["id"]
    r = client.post(
        "/api/games/slot/spin", json={"bet": 10, "session_id": sid}, headers=sessions["headers"]
    )
    assert r.status_code == status, r.get_json()
    assert r.get_json()["error"]["code"] == code
    assert balance(uid) == 5_000
    assert q("SELECT count(*) AS n FROM game_rounds") == [{"n": 0}]
    nonce = [r["nonce"] for r in q("SELECT nonce FROM fairness_seeds WHERE user_id = :u", u=uid)]
    assert nonce in ([], [0])  # the seed may be committed to now, but nothing was drawn


def test_a_round_in_the_players_open_session_counts_there(client, sessions):
    r = client.post(
        "/api/games/slot/spin",
        json={"bet": 10, "session_id": sessions["mine"]},
        headers=sessions["headers"],
    )
    assert r.status_code == 200 and r.get_json()["session_id"] == sessions["mine"]
    assert q("SELECT rounds FROM game_sessions WHERE id = :s", s=sessions["mine"]) == [
        {"rounds": 1}
    ]


def test_ledger_history_ids_are_integers(client):
    user = create_user(gold=1_000)
    headers = auth_headers(client, user)
    client.post("/api/games/slot/spin", json={"bet": 10}, headers=headers)
    client.post("/api/streak/claim", headers=headers)
    items = client.get("/api/rewards/history", headers=headers).get_json()["items"]
    assert {i["source_type"] for i in items} >= {"game_bet", "streak"}
    for item in items:
        assert item["source_id"] is None or isinstance(item["source_id"], int), item
