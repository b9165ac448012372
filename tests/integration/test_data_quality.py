"""Data-quality checks, anomaly rules, the balance replay, the scheduled job and the admin
report against the real PostgreSQL and Redis: nothing on data the system wrote itself
through its API; each injected fault flagged by its own check, for the right player."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from ccweb import db
from ccweb.db import in_transaction
from ccweb.quality import jobs, replay
from ccweb.quality.checks import CHECKS, DqConfig, Sweep, run
from ccweb.wallet import ledger
from tests.factories import (
    auth_headers,
    create_achievement,
    create_event,
    create_mission,
    create_product,
    create_user,
)
from tests.worker._support import progress_consumer, run_burst

CFG = DqConfig()


def checks(cfg: DqConfig = CFG, sweep: Sweep | None = None) -> dict[str, list[dict[str, Any]]]:
    with db.engine().connect() as conn:
        return run(conn, cfg, sweep).findings


def flagged(findings: dict[str, list[dict[str, Any]]]) -> dict[str, list[int]]:
    """{check: [user ids]} of the checks that found something."""
    return {name: [f["user_id"] for f in items] for name, items in findings.items() if items}


def sql(statement: str, **params: Any) -> Any:
    return in_transaction(lambda s: s.execute(text(statement), params))


def credit(user_id: int, delta: int, source_type: str, key: str, source_id: int | None = None):
    """Gold through the real ledger (the chain and the balance stay consistent)."""
    in_transaction(
        lambda s: ledger.apply(
            s,
            user_id=user_id,
            delta=delta,
            source_type=source_type,
            idempotency_key=key,
            source_id=source_id,
        )
    )


def ok(resp: Any) -> Any:
    assert resp.status_code in (200, 201), resp.get_json()
    return resp.get_json()


def play_honestly(client: Any, rds: Any, settings: Any) -> list[int]:
    """Two players who sign up, play every game, claim a streak, an event, a mission and
    an achievement, and buy in the shop — all through the API and the real worker."""
    eid = create_event([{"type": "plays", "target": 3}], [{"type": "gold", "amount": 700}])
    mid = create_mission(
        "daily", [{"type": "plays", "target": 2}], [{"type": "gold", "amount": 150}]
    )
    aid = create_achievement("dq_first_play", [{"type": "plays", "target": 1}])
    product = create_product(price_gold=300, items=[{"code": "lucky_charm", "quantity": 1}])
    uids = []
    for n in (1, 2):
        body = ok(
            client.post(
                "/api/auth/signup",
                json={
                    "site_id": f"dqplayer{n}",
                    "nickname": f"dq{n}",
                    "password": "password-1234",
                    "invite_code": "5858",
                },
            )
        )
        uid = body["user"]["id"]
        uids.append(uid)
        h = {"Authorization": f"Bearer {body['access_token']}"}
        ok(client.post("/api/streak/claim", headers=h))
        ok(client.post(f"/api/events/{eid}/participate", headers=h))
        for _ in range(3):
            ok(client.post("/api/games/slot/spin", json={"bet": 10}, headers=h))
        ok(client.post("/api/games/rps/play", json={"bet": 10, "choice": "rock"}, headers=h))
        ok(client.post("/api/games/crash/bet", json={"bet": 10, "auto_cashout": 1.5}, headers=h))
        ok(client.post("/api/games/gacha/pull", json={"count": 1}, headers=h))
        run_burst(progress_consumer(rds, settings))
        ok(client.post(f"/api/events/{eid}/claim", headers=h))
        ok(client.post(f"/api/missions/{mid}/claim", headers=h))
        ok(client.post(f"/api/achievements/{aid}/claim", headers=h))
        ok(
            client.post(
                "/api/shop/purchase",
                json={"product_id": product["id"], "idempotency_key": f"dq-{n}"},
                headers=h,
            )
        )
    return uids


def test_clean_data_has_no_findings_and_replays_to_the_stored_balances(
    client, rds, settings, seeded
):
    uids = play_honestly(client, rds, settings)
    n_ledger = sql(
        "SELECT count(DISTINCT source_type) FROM wallet_ledger WHERE user_id = ANY(:u)", u=uids
    ).scalar()
    assert n_ledger >= 7  # signup, streak, bet, win, event, mission, achievement, purchase
    findings = checks()
    assert set(findings) == set(CHECKS)
    assert flagged(findings) == {}
    with db.engine().connect() as conn:
        assert replay.balances(conn) == []


def test_negative_balance_is_flagged(client):
    user, other = create_user(gold=500), create_user(gold=500)
    sql("ALTER TABLE users DROP CONSTRAINT ck_users_gold_non_negative")
    try:
        sql("UPDATE users SET gold_balance = -50 WHERE id = :u", u=user["id"])
        findings = checks()
        assert findings["negative_balance"] == [
            {"check": "negative_balance", "user_id": user["id"], "details": {"balance": -50}}
        ]
        # the balance no longer matches its ledger either; the other player is fine
        assert flagged(findings)["ledger_mismatch"] == [user["id"]]
    finally:
        sql("UPDATE users SET gold_balance = 500 WHERE gold_balance < 0")
        sql("ALTER TABLE users ADD CONSTRAINT ck_users_gold_non_negative CHECK (gold_balance >= 0)")
    assert flagged(checks()) == {}
    assert other["id"] not in flagged(findings).get("negative_balance", [])


def test_ledger_mismatch_is_flagged_with_both_sides(client):
    user, other = create_user(gold=1_000), create_user(gold=1_000)
    credit(other["id"], 25, "test", "t:other")
    sql("UPDATE users SET gold_balance = 1234 WHERE id = :u", u=user["id"])
    findings = checks()
    assert flagged(findings) == {"ledger_mismatch": [user["id"]]}
    d = findings["ledger_mismatch"][0]["details"]
    assert d["balance"] == 1234 and d["last_balance_after"] == 1000 and d["chain_breaks"] == 0
    with db.engine().connect() as conn:
        diffs = replay.balances(conn)
    assert [(x["user_id"], x["details"]["ledger_sum"], x["details"]["balance"]) for x in diffs] == [
        (user["id"], 1000, 1234)
    ]


def test_a_row_lost_from_the_middle_of_the_history_breaks_the_chain(client):
    user = create_user(gold=1_000)
    for i in range(3):
        credit(user["id"], 10, "test", f"t:{i}")
    lost = sql("DELETE FROM wallet_ledger WHERE idempotency_key = 't:1' RETURNING id").scalar_one()
    findings = checks()
    assert flagged(findings) == {"ledger_mismatch": [user["id"]]}
    d = findings["ledger_mismatch"][0]["details"]
    assert d["chain_breaks"] == 1 and d["first_break_id"] == lost + 1
    with db.engine().connect() as conn:
        (diff,) = replay.balances(conn)
    assert diff["details"]["ledger_sum"] == 1020 and diff["details"]["balance"] == 1030
    assert diff["details"]["chain_breaks"] == 1


def test_old_mismatches_are_found_by_the_rotating_sweep(client):
    """Outside the window only the sweep sees a balance: with 2 players per run the third
    player's mismatch shows on the second run, then the sweep starts over."""
    users = [create_user(gold=100) for _ in range(3)]
    sql("UPDATE wallet_ledger SET created_at = now() - interval '2 days'")
    sql("UPDATE users SET gold_balance = 99 WHERE id = :u", u=users[2]["id"])
    cfg = DqConfig(sweep_users=2)
    sweep = Sweep()
    assert flagged(checks(cfg, sweep)) == {}
    assert sweep.after == users[1]["id"]
    assert flagged(checks(cfg, sweep)) == {"ledger_mismatch": [users[2]["id"]]}
    assert sweep.after == 0
    assert flagged(checks(cfg, None)) == {"ledger_mismatch": [users[2]["id"]]}  # full sweep


def test_a_claim_paid_twice_is_a_duplicate_claim(client):
    user, other = create_user(gold=100), create_user(gold=100)
    eid = create_event([{"type": "plays", "target": 1}])
    mid = create_mission("daily", [{"type": "plays", "target": 1}])
    credit(user["id"], 500, "event", f"event:{eid}:{user['id']}", eid)
    credit(user["id"], 500, "event", f"event:{eid}:{user['id']}:again", eid)
    # one mission paid once per period: yesterday's and today's are not duplicates
    credit(other["id"], 100, "mission", "mission:1:x", mid)
    credit(other["id"], 100, "mission", "mission:2:x", mid)
    sql(
        "UPDATE wallet_ledger SET created_at = now() - interval '1 day'"
        " WHERE idempotency_key = 'mission:1:x'"
    )
    findings = checks()
    assert flagged(findings) == {"duplicate_claim": [user["id"]]}
    d = findings["duplicate_claim"][0]["details"]
    assert d["source_type"] == "event" and d["source_id"] == eid and len(d["ledger_ids"]) == 2
    # the same mission paid twice in one period is
    credit(other["id"], 100, "mission", "mission:2:x:again", mid)
    assert flagged(checks())["duplicate_claim"] == [user["id"], other["id"]]


def test_a_burst_of_claims_is_flagged(client):
    user, calm = create_user(gold=100), create_user(gold=100)
    for i in range(CFG.claim_burst + 1):
        credit(user["id"], 50, "achievement", f"achievement:{i}:{user['id']}", 1000 + i)
    for i in range(CFG.claim_burst):
        credit(calm["id"], 50, "achievement", f"achievement:{i}:{calm['id']}", 1000 + i)
    findings = checks()
    assert flagged(findings) == {"rapid_claims": [user["id"]]}
    assert findings["rapid_claims"][0]["details"]["claims"] == CFG.claim_burst + 1


def test_a_big_gold_gain_within_a_minute_is_flagged_and_operator_grants_are_not(client):
    lucky, granted, slow = create_user(gold=100), create_user(gold=100), create_user(gold=100)
    credit(lucky["id"], 150_000, "shop_grant", "g:1")
    credit(lucky["id"], 60_000, "event", "g:2")
    credit(granted["id"], 500_000, "admin", "g:3")
    credit(slow["id"], 150_000, "shop_grant", "g:4")
    credit(slow["id"], 150_000, "shop_grant", "g:5")
    sql(
        "UPDATE wallet_ledger SET created_at = now() - interval '2 minutes'"
        " WHERE idempotency_key = 'g:4'"
    )
    findings = checks()
    assert flagged(findings) == {"gold_per_minute": [lucky["id"]]}
    assert (
        findings["gold_per_minute"][0]["details"]["gained"] == 210_100
    )  # with the 100 of the account's grant


def insert_rounds(user_id: int, game: str, n: int, wins: int, bet: int = 100, **detail: Any):
    """Constructed rounds (outcome chosen, not drawn): the rule reads game_rounds only."""
    base = sql("SELECT coalesce(max(id), 0) FROM game_rounds").scalar() + 1
    sql(
        """INSERT INTO game_rounds (id, user_id, game_type, bet, payout, outcome,
               server_seed_hash, client_seed, nonce, detail)
           SELECT :base + i, :u, :g, :bet,
                  CASE WHEN i < :wins THEN :bet * 2 ELSE 0 END,
                  CASE WHEN i < :wins THEN 'win' ELSE 'lose' END,
                  'h', 'c', i, CAST(:detail AS jsonb)
           FROM generate_series(0, :n - 1) i""",
        base=base,
        u=user_id,
        g=game,
        bet=bet,
        wins=wins,
        n=n,
        detail=__import__("json").dumps(detail),
    )


def test_a_win_rate_the_odds_cannot_explain_is_flagged(client):
    cheat, lucky, few = create_user(gold=100), create_user(gold=100), create_user(gold=100)
    insert_rounds(cheat["id"], "rps", 250, 150)  # 60 % against an exact 1/3
    insert_rounds(lucky["id"], "rps", 250, 100)  # 40 %: +2.2σ, luck
    insert_rounds(few["id"], "rps", 150, 150)  # every round won, but too few to judge
    insert_rounds(cheat["id"], "crash", 300, 200, auto_cashout=2.0)  # 67 % vs 48 %
    insert_rounds(lucky["id"], "crash", 300, 20, auto_cashout=10.0)  # 6.7 % vs 9.6 %
    findings = checks()
    assert flagged(findings) == {"win_rate": [cheat["id"], cheat["id"]]}
    by_game = {f["details"]["game_type"]: f["details"] for f in findings["win_rate"]}
    assert by_game["rps"]["rounds"] == 250 and by_game["rps"]["wins"] == 150
    assert by_game["rps"]["expected_win_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert by_game["rps"]["z"] > 5
    assert by_game["crash"]["expected_win_rate"] == pytest.approx(0.48, abs=1e-4)
    # outside the window nothing counts
    sql("UPDATE game_rounds SET created_at = now() - interval '2 hours'")
    assert flagged(checks()) == {}


def test_admin_report_shape_fresh_and_stored(client, settings):
    admin = create_user(is_admin=True)
    player = create_user(gold=100)
    assert client.get("/api/admin/data-quality").status_code == 401
    r = client.get("/api/admin/data-quality", headers=auth_headers(client, player))
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "FORBIDDEN"
    h = auth_headers(client, admin, admin=True)
    body = ok(client.get("/api/admin/data-quality", headers=h))
    assert body["ok"] is True and body["generated_at"].endswith("Z")
    assert set(body["checks"]) == set(CHECKS)
    assert all(c == {"count": 0, "samples": []} for c in body["checks"].values())
    stored = jobs.latest(settings)
    assert stored is not None and stored["generated_at"] == body["generated_at"]

    sql("UPDATE users SET gold_balance = 7 WHERE id = :u", u=player["id"])
    assert ok(client.get("/api/admin/data-quality", headers=h))["ok"] is True  # the stored one
    fresh = ok(client.get("/api/admin/data-quality?fresh=1", headers=h))
    assert fresh["ok"] is False
    assert fresh["checks"]["ledger_mismatch"]["count"] == 1
    (sample,) = fresh["checks"]["ledger_mismatch"]["samples"]
    assert sample["check"] == "ledger_mismatch" and sample["user_id"] == player["id"]
    assert ok(client.get("/api/admin/data-quality", headers=h))["ok"] is False  # stored now
    assert client.get("/api/admin/data-quality?fresh=maybe", headers=h).status_code == 400


def test_scheduled_job_sets_metrics_and_stores_the_report(client, settings, monkeypatch):
    user = create_user(gold=100)
    sql("UPDATE users SET gold_balance = 1 WHERE id = :u", u=user["id"])
    monkeypatch.setenv("CC_DQ_INTERVAL_S", "0.2")
    stop = threading.Event()
    before = REGISTRY.get_sample_value("cc_dq_run_seconds_count") or 0.0
    t = threading.Thread(target=jobs.run_scheduled, args=(settings, stop), daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 10
        while (REGISTRY.get_sample_value("cc_dq_run_seconds_count") or 0) < before + 2:
            assert time.monotonic() < deadline, "the job did not run twice"
            time.sleep(0.05)
    finally:
        stop.set()
        t.join(5)
    assert not t.is_alive()
    assert REGISTRY.get_sample_value("cc_dq_findings", {"check": "ledger_mismatch"}) == 1
    assert REGISTRY.get_sample_value("cc_dq_findings", {"check": "negative_balance"}) == 0
    assert REGISTRY.get_sample_value("cc_dq_last_run_timestamp") > time.time() - 10
    stored = jobs.latest(settings)
    assert stored["checks"]["ledger_mismatch"]["samples"][0]["user_id"] == user["id"]
