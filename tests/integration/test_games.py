"""Games over HTTP against real PostgreSQL/Redis: money, stats, fairness, sessions."""

from __future__ import annotations

import hashlib
import json
import threading

import pytest
from sqlalchemy import text

from ccweb.db import in_transaction
from ccweb.games import config, fairness
from ccweb.games.engines import crash, gacha, rps, slot
from tests.factories import auth_headers, balance, create_user, ledger_sum

PLAYS = {
    "slot": ("/api/games/slot/spin", {"bet": 100}),
    "gacha": ("/api/games/gacha/pull", {"count": 1}),
    "rps": ("/api/games/rps/play", {"bet": 100, "choice": "rock"}),
    "crash": ("/api/games/crash/bet", {"bet": 100, "auto_cashout": 2.0}),
}


def q(sql: str, **params):
    return in_transaction(lambda s: s.execute(text(sql), params).mappings().all())


@pytest.fixture
def player(client):
    user = create_user(gold=100_000)
    return user, auth_headers(client, user)


@pytest.mark.parametrize("game", list(PLAYS))
def test_a_round_moves_money_exactly_and_records_everything(client, player, game):
    """balance after = before − bet + payout; two ledger rows; a round row; stats; a
    game.round outbox event; the ledger still explains the balance."""
    user, headers = player
    path, body = PLAYS[game]
    before = balance(user["id"])
    resp = client.post(path, json=body, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    r = resp.get_json()
    assert r["game_type"] == game and r["outcome"] in {"win", "lose", "draw"}
    assert r["gold_delta"] == r["payout"] - r["bet"]
    assert r["gold_balance"] == before - r["bet"] + r["payout"] == balance(user["id"])
    assert balance(user["id"]) == ledger_sum(user["id"])
    rows = q(
        "SELECT delta_gold, source_type FROM wallet_ledger WHERE source_id = :r ORDER BY id",
        r=str(r["round_id"]),
    )
    expected = [(-r["bet"], "game_bet")] + ([(r["payout"], "game_win")] if r["payout"] else [])
    assert [(x["delta_gold"], x["source_type"]) for x in rows] == expected
    rnd = q("SELECT * FROM game_rounds WHERE id = :r", r=r["round_id"])[0]
    assert (rnd["bet"], rnd["payout"], rnd["outcome"]) == (r["bet"], r["payout"], r["outcome"])
    ev = q("SELECT envelope FROM outbox WHERE event_type = 'game.round'")
    assert [e["envelope"]["payload"]["round_id"] for e in ev] == [r["round_id"]]
    assert r["experience_points"] == 10 and r["level"] == 1


def test_game_fields(client, player):
    _, headers = player
    s = client.post("/api/games/slot/spin", json={"bet": 100}, headers=headers).get_json()
    assert len(s["reels"]) == 3 and all(len(reel) == 3 for reel in s["reels"])
    assert isinstance(s["lines"], list) and "multiplier" in s
    g10 = client.post("/api/games/gacha/pull", json={"count": 10}, headers=headers).get_json()
    assert g10["bet"] == 10 * config.DEFAULT_GACHA.cost and len(g10["items"]) == 10
    assert all({"item_id", "rarity"} <= set(i) for i in g10["items"])
    r = client.post(
        "/api/games/rps/play", json={"bet": 50, "choice": "paper"}, headers=headers
    ).get_json()
    assert r["house_choice"] in {"rock", "paper", "scissors"} and r["choice"] == "paper"
    c = client.post(
        "/api/games/crash/bet", json={"bet": 100, "auto_cashout": 1.5}, headers=headers
    ).get_json()
    assert c["crash_point"] >= 1.0
    if c["outcome"] == "win":
        assert c["cashed_out_at"] == 1.5 and c["payout"] == 150
    else:
        assert c["cashed_out_at"] is None and c["payout"] == 0


def test_stats_counters_equal_the_plays(client, player):
    _, headers = player
    outcomes = {g: [] for g in PLAYS}
    for game in ("slot", "slot", "rps", "crash", "crash", "crash"):
        path, body = PLAYS[game]
        outcomes[game].append(client.post(path, json=body, headers=headers).get_json())
    stats = client.get("/api/games/stats/me", headers=headers).get_json()
    assert stats["success"] is True
    st = stats["stats"]
    assert set(st) == {
        "total_games_played",
        "total_wins",
        "total_losses",
        "win_rate",
        "overall_max_win",
        "games",
    }
    assert set(st["games"]) == {"slot", "gacha", "rps", "crash"}
    for game, plays in outcomes.items():
        per = st["games"][game]
        assert set(per) == {"total", "wins", "losses", "max_win"}
        assert per["total"] == len(plays)
        assert per["wins"] == sum(p["outcome"] == "win" for p in plays)
        assert per["losses"] == sum(p["outcome"] == "lose" for p in plays)
        assert per["max_win"] == max(
            [p["payout"] for p in plays if p["outcome"] == "win"], default=0
        )
    assert st["total_games_played"] == 6
    wins = sum(p["outcome"] == "win" for ps in outcomes.values() for p in ps)
    assert st["total_wins"] == wins and st["win_rate"] == round(wins / 6, 4)
    assert st["overall_max_win"] == max(g["max_win"] for g in st["games"].values())


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/games/slot/spin", {"bet": 0}),
        ("/api/games/slot/spin", {"bet": -5}),
        ("/api/games/slot/spin", {"bet": 1.5}),
        ("/api/games/slot/spin", {"bet": "10"}),
        ("/api/games/slot/spin", {"bet": 10_001}),
        ("/api/games/slot/spin", {}),
        ("/api/games/rps/play", {"bet": 10, "choice": "lizard"}),
        ("/api/games/gacha/pull", {"count": 3}),
        ("/api/games/crash/bet", {"bet": 10, "auto_cashout": 1.0}),
        ("/api/games/crash/bet", {"bet": 10, "auto_cashout": 1.234}),
        ("/api/games/roulette/spin", {"bet": 10}),
    ],
)
def test_bad_input_is_400_and_applies_nothing(client, player, path, body):
    user, headers = player
    resp = client.post(path, json=body, headers=headers)
    expected = 404 if "roulette" in path else 400
    assert resp.status_code == expected
    if expected == 400:
        assert resp.get_json()["error"]["code"] == "VALIDATION_ERROR"
    assert balance(user["id"]) == 100_000
    assert q("SELECT count(*) AS n FROM game_rounds")[0]["n"] == 0
    assert q("SELECT nonce FROM fairness_seeds WHERE user_id = :u", u=user["id"]) in (
        [],
        [{"nonce": 0}],
    )


def test_short_balance_is_409_and_burns_nothing(client):
    user = create_user(gold=50)
    headers = auth_headers(client, user)
    r = client.post("/api/games/slot/spin", json={"bet": 100}, headers=headers)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "INSUFFICIENT_GOLD"
    assert balance(user["id"]) == 50
    assert q("SELECT count(*) AS n FROM game_rounds")[0]["n"] == 0
    assert client.get("/api/games/fairness", headers=headers).get_json()["nonce"] == 0


def test_concurrent_plays_never_overdraw(app):
    """40 concurrent 100-gold spins on 1 000 gold: at most 10 bets are covered at any
    time; the balance never goes negative and the ledger explains it."""
    user = create_user(gold=1000)
    client = app.test_client()
    headers = auth_headers(client, user)
    results: list[int] = []

    def spin() -> None:
        c = app.test_client()
        results.append(
            c.post("/api/games/slot/spin", json={"bet": 100}, headers=headers).status_code
        )

    threads = [threading.Thread(target=spin) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(results) <= {200, 409} and 200 in results
    assert balance(user["id"]) >= 0 and balance(user["id"]) == ledger_sum(user["id"])
    nonces = [r["nonce"] for r in q("SELECT nonce FROM game_rounds ORDER BY nonce")]
    assert nonces == list(range(len(nonces)))  # no nonce used twice or skipped
    assert results.count(200) == len(nonces)


def test_revealed_seed_recomputes_every_past_round(client, player):
    """Play, rotate, then verify: sha256(revealed seed) is the committed hash and the
    engines reproduce every round from (server seed, client seed, nonce)."""
    _, headers = player
    committed = client.get("/api/games/fairness", headers=headers).get_json()
    for game in ("slot", "gacha", "rps", "crash", "slot", "gacha"):
        path, body = PLAYS[game]
        assert client.post(path, json=body, headers=headers).status_code == 200
    rounds = client.get("/api/games/rounds/recent?limit=10", headers=headers).get_json()["items"]
    rotated = client.post(
        "/api/games/fairness/rotate", json={"client_seed": "my-seed"}, headers=headers
    ).get_json()
    seed = rotated["previous_server_seed"]
    assert hashlib.sha256(seed.encode()).hexdigest() == committed["server_seed_hash"]
    assert rotated["previous_server_seed_hash"] == committed["server_seed_hash"]
    assert rotated["server_seed_hash"] != committed["server_seed_hash"]
    assert rotated["client_seed"] == "my-seed" and rotated["nonce"] == 0
    assert sorted(r["nonce"] for r in rounds) == list(range(6))
    for r in rounds:
        assert r["server_seed_hash"] == committed["server_seed_hash"]
        rng = fairness.floats(seed, r["client_seed"], r["nonce"])
        d = r["detail"]
        if r["game_type"] == "slot":
            again = slot.play(config.DEFAULT_SLOT, rng, d["bet"])
        elif r["game_type"] == "gacha":
            again = gacha.play(config.DEFAULT_GACHA, rng, d["count"], d["pity_before"])
        elif r["game_type"] == "rps":
            again = rps.play(config.DEFAULT_RPS, rng, d["bet"], d["choice"])
        else:
            again = crash.play(config.DEFAULT_CRASH, rng, d["bet"], d["auto_cashout"])
        assert json.loads(json.dumps(again.to_dict())) == d  # the whole stored round
        assert (again.payout, again.outcome) == (r["payout"], r["outcome"])
    after = client.get("/api/games/fairness", headers=headers).get_json()
    assert after == {
        "server_seed_hash": rotated["server_seed_hash"],
        "client_seed": "my-seed",
        "nonce": 0,
    }


def test_sessions_summarise_their_rounds(client, player):
    _, headers = player
    started = client.post("/api/games/sessions/start", json={"game_type": "slot"}, headers=headers)
    assert started.status_code == 201
    sid = started.get_json()["session_id"]
    plays = [
        client.post(
            "/api/games/slot/spin", json={"bet": 100, "session_id": sid}, headers=headers
        ).get_json()
        for _ in range(3)
    ]
    client.post("/api/games/slot/spin", json={"bet": 100}, headers=headers)  # not in session
    end = client.post(f"/api/games/sessions/{sid}/end", headers=headers)
    assert end.status_code == 200
    summary = end.get_json()
    assert summary["rounds"] == 3 and summary["total_bet"] == 300
    assert summary["total_payout"] == sum(p["payout"] for p in plays)
    assert summary["duration_s"] >= 0
    emitted = q(
        "SELECT event_type, envelope -> 'payload' AS p FROM outbox"
        " WHERE event_type LIKE 'game.session.%' ORDER BY id"
    )
    assert [e["event_type"] for e in emitted] == ["game.session.start", "game.session.end"]
    assert emitted[0]["p"] == {"session_id": sid, "game_type": "slot"}
    assert emitted[1]["p"]["rounds"] == 3
    assert emitted[1]["p"]["gold_delta"] == summary["net"]
    again = client.post(f"/api/games/sessions/{sid}/end", headers=headers)
    assert again.status_code == 409
    assert len(q("SELECT 1 FROM outbox WHERE event_type = 'game.session.end'")) == 1
    assert client.post("/api/games/sessions/999999/end", headers=headers).status_code == 404
    recent = client.get("/api/games/sessions/recent?limit=10", headers=headers).get_json()
    assert [s["session_id"] for s in recent["items"]] == [sid]
    bad = client.post("/api/games/sessions/start", json={"game_type": "poker"}, headers=headers)
    assert bad.status_code == 400


def test_idempotency_key_replays_a_spin(client, player):
    user, headers = player
    h = {**headers, "X-Idempotency-Key": "spin-1"}
    first = client.post("/api/games/slot/spin", json={"bet": 100}, headers=h)
    again = client.post("/api/games/slot/spin", json={"bet": 100}, headers=h)
    assert again.headers["Idempotent-Replay"] == "true"
    assert again.get_json() == first.get_json()
    assert q("SELECT count(*) AS n FROM game_rounds")[0]["n"] == 1
    assert balance(user["id"]) == first.get_json()["gold_balance"]


def test_rounds_stay_exact_when_another_process_moves_the_seed(client, player):
    """The per-process seed cache is optimistic: if another process played (nonce moved)
    or rotated the seed, the round is redrawn with the committed state — never with a
    used nonce or a revealed seed."""
    user, headers = player
    first = client.post("/api/games/slot/spin", json={"bet": 10}, headers=headers).get_json()
    assert first["fairness"]["nonce"] == 0
    # another process plays twice: the committed nonce is now 3
    in_transaction(
        lambda s: s.execute(
            text("UPDATE fairness_seeds SET nonce = nonce + 2 WHERE user_id = :u"),
            {"u": user["id"]},
        )
    )
    second = client.post("/api/games/slot/spin", json={"bet": 10}, headers=headers).get_json()
    assert second["fairness"]["nonce"] == 3
    # another process rotates the seed
    in_transaction(
        lambda s: s.execute(
            text(
                "UPDATE fairness_seeds SET server_seed = md5(server_seed) || md5(user_id::text),"
                " server_seed_hash = :h,"
                " nonce = 0 WHERE user_id = :u"
            ),
            {"u": user["id"], "h": "f" * 64},
        )
    )
    third = client.post("/api/games/slot/spin", json={"bet": 10}, headers=headers).get_json()
    assert third["fairness"] == {**third["fairness"], "server_seed_hash": "f" * 64, "nonce": 0}
    assert q("SELECT nonce FROM fairness_seeds WHERE user_id = :u", u=user["id"]) == [{"nonce": 1}]
    assert balance(user["id"]) == ledger_sum(user["id"])


def test_level_up_is_in_the_response_and_an_event(client):
    """500 XP is level 2: the round that crosses it says so and emits user.level_up."""
    user = create_user(gold=10_000)
    in_transaction(
        lambda s: s.execute(
            text("UPDATE users SET experience_points = 495 WHERE id = :u"), {"u": user["id"]}
        )
    )
    headers = auth_headers(client, user)
    r = client.post(
        "/api/games/rps/play", json={"bet": 10, "choice": "rock"}, headers=headers
    ).get_json()
    assert r["level_up"] is True and r["level"] == 2 and r["experience_points"] == 505
    ev = q("SELECT envelope FROM outbox WHERE event_type = 'user.level_up'")
    assert [e["envelope"]["payload"]["level"] for e in ev] == [2]
    assert ev[0]["envelope"]["payload"]["previous_level"] == 1
    again = client.post(
        "/api/games/rps/play", json={"bet": 10, "choice": "rock"}, headers=headers
    ).get_json()
    assert again["level_up"] is False
    assert len(q("SELECT envelope FROM outbox WHERE event_type = 'user.level_up'")) == 1
