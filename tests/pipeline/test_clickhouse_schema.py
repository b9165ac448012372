"""ClickHouse migrations on the real server (18.16 in dev and CI): applied in order on an
empty database and recorded, a second run applies nothing, an edited applied file is
refused, the contract columns have their types, and a replayed event collapses."""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccweb import events as ev
from ccweb.analytics import ingest
from ccweb.analytics.migrate import MIGRATIONS_DIR, MigrationError, load, main, migrate
from tests.pipeline.conftest import ch_client, with_database

CONTRACT = {
    "event_id": "String",
    "event_type": "String",
    "user_id": "UInt64",
    "ts": "DateTime('UTC')",
    "ts_ms": "UInt16",
    "event_date": "Date",
    "entity_id": "UInt64",
    "delta_gold": "Int64",
    "amount_gold": "Int64",
    "balance_after": "Int64",
    "status": "String",
    "game_type": "String",
    "payload": "String",
    "dedupe_key": "String",
    "version": "UInt64",
}
# The KPI key views (0006): ReplacingMergeTree whose sorting key is the fact's identity.
KEY_VIEWS = {
    "mv_active_players": "(event_date, user_id)",
    "mv_purchases": "(event_date, user_id, event_id)",
    "mv_event_players": "(event_date, event_type, user_id, claim_id)",
}


@pytest.fixture
def empty_db(clickhouse_url: str) -> Iterator[str]:
    """The URL of a database that does not exist yet (migrate creates it)."""
    name = f"{clickhouse_url.rsplit('/', 1)[1]}_m{secrets.token_hex(3)}"
    url = with_database(clickhouse_url, name)
    yield url
    c = ch_client(clickhouse_url)
    c.execute(f"DROP DATABASE IF EXISTS {name}")
    c.disconnect()


def test_migrations_apply_on_an_empty_database_once(
    empty_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    files = load()
    assert [m.version for m in files] == sorted(m.version for m in files) == [1, 2, 3, 4, 5, 6, 7]

    assert main(["--url", empty_db]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "clickhouse migrate: applied 0001_events_raw",
        "clickhouse migrate: applied 0002_mv_user_daily",
        "clickhouse migrate: applied 0003_mv_event_completion",
        "clickhouse migrate: applied 0004_mv_daily_kpis",
        "clickhouse migrate: applied 0005_mv_user_spend",
        "clickhouse migrate: applied 0006_kpi_key_views",
        "clickhouse migrate: applied 0007_drop_state_kpi_views",
    ]
    c = ch_client(empty_db)
    try:
        recorded = c.execute(
            "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
        )
        assert recorded == [(m.version, m.name, m.checksum) for m in files]
        tables = {r[0] for r in c.execute("SHOW TABLES")}
        assert {
            "events_raw",
            "mv_user_daily",
            "mv_event_completion",
            "mv_active_players",
            "mv_purchases",
            "mv_event_players",
        } <= tables
        assert not {"mv_daily_kpis", "mv_user_spend"} & tables  # superseded (0007)
        for view, key in KEY_VIEWS.items():
            create = c.execute(f"SHOW CREATE TABLE `.inner.{view}`")[0][0]
            assert "ReplacingMergeTree()" in create and f"ORDER BY {key}" in create, view

        assert migrate(empty_db) == []  # second run: nothing
        assert main(["--url", empty_db]) == 0
        assert "up to date" in capsys.readouterr().out
        assert c.execute("SELECT count() FROM schema_migrations FINAL") == [(7,)]

        types = dict(c.execute("SELECT name, type FROM system.columns WHERE database ="
                               " currentDatabase() AND table = 'events_raw'"))  # fmt: skip
        assert {k: types.get(k) for k in CONTRACT} == CONTRACT
        key = c.execute(
            "SELECT sorting_key, partition_key, engine FROM system.tables"
            " WHERE database = currentDatabase() AND name = 'events_raw'"
        )
        if key and key[0][0]:  # system.tables has sorting_key on newer servers only
            assert "event_id" in key[0][0]
        create = c.execute("SHOW CREATE TABLE events_raw")[0][0]
        assert "ReplacingMergeTree(version)" in create
        assert "ORDER BY (event_date, event_type, user_id, event_id, entity_id)" in create
        assert "PARTITION BY toYYYYMM(event_date)" in create
    finally:
        c.disconnect()


def test_an_applied_migration_that_changed_is_refused(empty_db: str, tmp_path: Path) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    migrate(empty_db, copy)
    first = sorted(copy.glob("0001_*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(empty_db, copy)
    assert main(["--url", ""]) == 2  # ClickHouse disabled: an error, not a crash


def test_a_new_version_is_applied_after_the_recorded_ones(empty_db: str, tmp_path: Path) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    migrate(empty_db, copy)
    (copy / "0099_extra.sql").write_text(
        "-- a later version\nCREATE TABLE IF NOT EXISTS extra (x UInt8)\n"
        "ENGINE = MergeTree() ORDER BY x;\n"
    )
    assert [m.version for m in migrate(empty_db, copy)] == [99]
    c = ch_client(empty_db)
    try:
        assert c.execute("EXISTS TABLE extra") == [(1,)]
    finally:
        c.disconnect()


@pytest.mark.parametrize(
    ("name", "lists"),
    [("0002_mv_user_daily.sql", 1), ("0004_mv_daily_kpis.sql", 1), ("0006_kpi_key_views.sql", 2)],
)
def test_the_views_activity_rule_is_ccweb_events_rule(name: str, lists: int) -> None:
    """The views (and 0006's backfill) spell out NOT_PLAYER_ACTIVITY in SQL: it must not
    drift."""
    sql = (MIGRATIONS_DIR / name).read_text()
    listed = re.findall(r"event_type NOT IN \(([^)]*)\)", sql)
    assert len(listed) == lists
    for found in listed:
        assert set(re.findall(r"'([^']+)'", found)) == set(ev.NOT_PLAYER_ACTIVITY)


def test_a_replayed_event_collapses_in_events_raw(empty_db: str) -> None:
    migrate(empty_db)
    env = ev.make_envelope(ev.GAME_ROUND, 5, {"round_id": 1, "bet": 10, "payout": 30})
    rows = ingest.rows_of(env)
    c = ch_client(empty_db)
    try:
        for _ in range(3):
            c.execute(ingest.INSERT_SQL, rows)
        assert c.execute("SELECT count() FROM events_raw FINAL") == [(1,)]
        c.execute("OPTIMIZE TABLE events_raw FINAL")
        assert c.execute("SELECT count(), sum(delta_gold) FROM events_raw") == [(1, 20)]
    finally:
        c.disconnect()
