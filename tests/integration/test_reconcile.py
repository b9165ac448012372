"""The reconciliation report: zero on data the system wrote itself, and each kind of
damage shows up in its own count."""

from __future__ import annotations

from sqlalchemy import text

from ccweb import db, events
from ccweb.db import in_transaction
from ccweb.effects import emit
from ccweb.ops.reconcile import MUST_BE_ZERO, reconcile
from tests.factories import auth_headers, create_user


def report(grace_s: float = 0.0) -> dict:
    with db.engine().connect() as conn:
        return reconcile(conn, grace_s=grace_s)


def processed_everything() -> None:
    """Mark every outbox event processed by both groups (as a drained worker would)."""
    in_transaction(
        lambda s: s.execute(
            text(
                "INSERT INTO processed_events (consumer, event_id)"
                " SELECT g, event_id FROM outbox, unnest(ARRAY['activity', 'progress']) g"
                " ON CONFLICT DO NOTHING"
            )
        )
    )


def test_data_written_by_the_system_reconciles(client):
    user = create_user(gold=5_000)
    headers = auth_headers(client, user)
    for bet in (10, 20, 30):
        assert (
            client.post("/api/games/slot/spin", json={"bet": bet}, headers=headers).status_code
            == 200
        )
    assert client.post("/api/streak/claim", headers=headers).status_code == 200
    processed_everything()
    r = report()
    assert r["ok"], r
    assert r["players"] == 1 and r["ledger_rows"] >= 5
    assert all(r[k] == 0 for k in MUST_BE_ZERO)


def test_each_kind_of_damage_is_counted(client):
    user = create_user(gold=5_000)
    headers = auth_headers(client, user)
    for _ in range(3):
        client.post("/api/games/slot/spin", json={"bet": 100}, headers=headers)
    processed_everything()
    assert report()["ok"]

    def damage(sql: str) -> None:
        in_transaction(lambda s: s.execute(text(sql), {"u": user["id"]}))

    # a bet row lost from the middle of the history
    damage(
        "DELETE FROM wallet_ledger WHERE id = (SELECT min(id) FROM wallet_ledger"
        " WHERE source_type = 'game_bet')"
    )
    r = report()
    assert not r["ok"]
    assert r["ledger_mismatches"] == 1 and r["ledger_chain_breaks"] >= 1
    assert r["rounds_with_wrong_money"] == 1
    # money with no round behind it
    damage("DELETE FROM game_rounds WHERE id = (SELECT max(id) FROM game_rounds)")
    assert report()["game_money_without_round"] >= 1
    # an event committed but never processed
    in_transaction(lambda s: emit(s, events.AUTH_LOGIN, user["id"], {}))
    lost = report(grace_s=0)["lost_events"]
    assert lost == {"activity": 1, "progress": 0}
    assert report(grace_s=3600)["lost_events"] == {"activity": 0, "progress": 0}
