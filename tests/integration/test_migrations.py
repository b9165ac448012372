"""Alembic: one head, upgrade/downgrade/upgrade on an empty database, no model drift."""

from __future__ import annotations

import secrets
import subprocess
import sys

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from ccweb.manage import alembic_config
from ccweb.models import Base
from tests.conftest import process_environment


@pytest.fixture
def empty_db(settings):
    url = make_url(settings.sqlalchemy_url)
    name = f"cc_mig_{secrets.token_hex(4)}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(url.set(database=name))
    yield engine
    engine.dispose()
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def run(engine, fn, *args):
    cfg = alembic_config()
    cfg.attributes["configure_logger"] = False
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        fn(cfg, *args)


def test_single_head():
    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1


def test_upgrade_downgrade_upgrade_and_no_drift(empty_db):
    run(empty_db, command.upgrade, "head")
    tables = set(inspect(empty_db).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    run(empty_db, command.downgrade, "base")
    assert set(inspect(empty_db).get_table_names()) <= {"alembic_version"}
    run(empty_db, command.upgrade, "head")
    with empty_db.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            ),
            Base.metadata,
        )
    assert diff == [], diff


def test_audit_target_ids_become_integers_and_text_keys_move_to_target_key(empty_db):
    """Revision 0007 on rows written before it: canonical integer text becomes the
    bigint ``target_id``; a flag key, text that only looks numeric ("007") and numbers
    beyond bigint move to ``target_key`` unchanged; the downgrade gives back the text."""
    before = [
        "42",
        "0",
        "-7",
        "9223372036854775807",
        "9223372036854775808",
        "007",
        "signup.invite_required",
        None,
    ]
    run(empty_db, command.upgrade, "0006")
    with empty_db.begin() as conn:
        for value in before:
            conn.execute(
                text(
                    "INSERT INTO admin_audit (action, target_type, target_id)"
                    " VALUES ('test', 'test', :v)"
                ),
                {"v": value},
            )

    def targets(columns: str = "target_id, target_key") -> list[tuple]:
        with empty_db.connect() as conn:
            sql = f"SELECT {columns} FROM admin_audit ORDER BY id"
            return [tuple(r) for r in conn.execute(text(sql))]

    run(empty_db, command.upgrade, "0007")
    assert targets() == [
        (42, None),
        (0, None),
        (-7, None),
        (9223372036854775807, None),
        (None, "9223372036854775808"),
        (None, "007"),
        (None, "signup.invite_required"),
        (None, None),
    ]
    run(empty_db, command.downgrade, "0006")
    assert [t[0] for t in targets("target_id")] == before


def test_manage_migrate_adds_game_config_versions_and_downgrade_removes_them(empty_db, settings):
    """``python -m ccweb.manage migrate`` (the deploy's command) on a fresh database
    creates ``game_configs`` and ``game_rounds.config_version`` (nullable: rounds from
    before 0013 have no version and are verified with the current config), and 0013's
    downgrade takes both away again."""
    env = process_environment(settings)
    env["DATABASE_URL"] = empty_db.url.render_as_string(hide_password=False)
    done = subprocess.run(
        [sys.executable, "-m", "ccweb.manage", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    insp = inspect(empty_db)
    cols = {c["name"]: c for c in insp.get_columns("game_configs")}
    assert set(cols) == {"version", "document", "created_at"}
    assert insp.get_pk_constraint("game_configs")["constrained_columns"] == ["version"]
    assert cols["document"]["nullable"] is False
    assert "now()" in str(cols["created_at"]["default"])
    version = {c["name"]: c for c in insp.get_columns("game_rounds")}["config_version"]
    assert version["nullable"] is True and version["default"] is None
    assert not [i for i in insp.get_indexes("game_rounds") if "config_version" in i["column_names"]]

    run(empty_db, command.downgrade, "0012")
    insp = inspect(empty_db)
    assert "game_configs" not in insp.get_table_names()
    assert "config_version" not in {c["name"] for c in insp.get_columns("game_rounds")}
