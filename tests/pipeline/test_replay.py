"""The replay's progress part against the real ClickHouse server: events the system
wrote (outbox envelopes of real API play), ingested with the ingester's own row format
into a migrated database of the test's own, rebuild the stored event and mission
progress exactly; a corrupted stored row is reported with both sides; duplicated raw
rows change nothing; without ClickHouse the part is skipped, not failed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import text

from ccweb import db
from ccweb.analytics import ingest
from ccweb.config import set_settings
from ccweb.db import in_transaction
from ccweb.quality import replay
from ccweb.quality.__main__ import main
from tests.factories import auth_headers, create_event, create_mission, create_user
from tests.pipeline.conftest import ch_client
from tests.pipeline.test_ingester import analytics_db
from tests.worker._support import progress_consumer, run_burst

__all__ = ["analytics_db"]


def ingest_outbox(url: str, copies: int = 1) -> int:
    """Every outbox envelope into ``events_raw``, as the ingester writes rows."""
    envelopes = in_transaction(
        lambda s: [r[0] for r in s.execute(text("SELECT envelope FROM outbox ORDER BY id"))]
    )
    rows = [row for env in envelopes for row in ingest.rows_of(env)]
    c = ch_client(url)
    try:
        for _ in range(copies):
            c.execute(ingest.INSERT_SQL, rows)
    finally:
        c.disconnect()
    return len(envelopes)


def progress_report(url: str) -> dict[str, Any]:
    with db.engine().connect() as conn:
        return replay.progress(conn, url, grace_s=0)


@pytest.fixture
def played(client, rds, settings):  # type: ignore[no-untyped-def]
    """Two players: one joined an event and plays slot and RPS (slot-only and any-game
    requirements), one only has a daily mission; both progress through the worker."""
    eid = create_event(
        [
            {"type": "plays", "target": 100},
            {"type": "spend_gold", "game_type": "slot", "target": 10_000},
            {"type": "streak_days", "target": 5},
        ]
    )
    mid = create_mission("daily", [{"type": "plays", "target": 2}])
    a, b = create_user(gold=5_000), create_user(gold=5_000)
    ha, hb = auth_headers(client, a), auth_headers(client, b)
    for _ in range(3):  # before joining: counts for the mission only
        assert client.post("/api/games/slot/spin", json={"bet": 10}, headers=ha).status_code == 200
    assert client.post(f"/api/events/{eid}/participate", headers=ha).status_code == 200
    for bet in (20, 30):
        assert client.post("/api/games/slot/spin", json={"bet": bet}, headers=ha).status_code == 200
    rps = {"bet": 40, "choice": "paper"}
    assert client.post("/api/games/rps/play", json=rps, headers=ha).status_code == 200
    assert client.post("/api/streak/claim", headers=ha).status_code == 200
    assert client.post("/api/games/slot/spin", json={"bet": 10}, headers=hb).status_code == 200
    run_burst(progress_consumer(rds, settings))
    return {"a": a["id"], "b": b["id"], "event": eid, "mission": mid}


def stored(sql: str, **params: Any) -> Any:
    return in_transaction(lambda s: s.execute(text(sql), params).one())


def test_progress_rebuilt_from_events_raw_matches_and_corruption_is_reported(analytics_db, played):
    p = stored("SELECT progress FROM event_participations WHERE user_id = :u", u=played["a"])
    assert list(p.progress) == [3, 50, 1]  # 2 spins + rps; slot bets 20+30; day-1 streak
    assert ingest_outbox(analytics_db, copies=2) > 0  # every raw row twice: deduped
    clean = progress_report(analytics_db)
    assert clean["count"] == 0, clean["differences"]
    assert clean["rows_checked"] == 3  # a's participation, a's and b's daily missions
    assert clean["events_read"] == 8  # 6 rounds + 1 streak claim + b's round, once each

    in_transaction(
        lambda s: s.execute(
            text("UPDATE event_participations SET progress = ARRAY[7, 50, 1] WHERE user_id = :u"),
            {"u": played["a"]},
        )
    )
    in_transaction(
        lambda s: s.execute(
            text("UPDATE user_missions SET status = 'claimable' WHERE user_id = :u"),
            {"u": played["b"]},
        )
    )
    report = progress_report(analytics_db)
    diffs = {(d["user_id"], d["details"]["kind"]): d for d in report["differences"]}
    assert set(diffs) == {(played["a"], "event"), (played["b"], "mission")}
    ev = diffs[(played["a"], "event")]
    assert ev["check"] == "progress" and ev["details"]["event_id"] == played["event"]
    assert ev["details"]["stored"] == [7, 50, 1] and ev["details"]["replayed"] == [3, 50, 1]
    mi = diffs[(played["b"], "mission")]["details"]
    assert mi["mission_id"] == played["mission"] and mi["stored"] == mi["replayed"] == [1]
    assert mi["stored_status"] == "claimable" and mi["replayed_complete"] is False


def test_events_missing_from_clickhouse_show_as_differences(analytics_db, played):
    """Nothing ingested: the stored progress is more than the raw events explain."""
    report = progress_report(analytics_db)
    assert {d["user_id"] for d in report["differences"]} == {played["a"], played["b"]}
    assert report["events_read"] == 0


def test_replay_command_skips_progress_without_clickhouse_and_still_checks_balances(
    client, settings, capsys
):
    set_settings(replace(settings, clickhouse_url=""))  # `make test` sets CLICKHOUSE_URL
    user = create_user(gold=300)
    assert main(["replay"]) == 0
    out = capsys.readouterr().out
    assert '"progress": "skipped: ClickHouse disabled"' in out
    with db.engine().connect() as conn:
        assert replay.replay(conn, "")["progress"] == {"skipped": replay.SKIPPED_NO_CLICKHOUSE}
    in_transaction(
        lambda s: s.execute(
            text("UPDATE users SET gold_balance = 1 WHERE id = :u"), {"u": user["id"]}
        )
    )
    assert main(["replay", "--json"]) == 1
    assert f'"user_id": {user["id"]}' in capsys.readouterr().out
    assert main(["check"]) == 1
