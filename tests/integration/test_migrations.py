"""Alembic: one head, upgrade/downgrade/upgrade on an empty database, no model drift."""

from __future__ import annotations

import secrets

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from ccweb.manage import alembic_config
from ccweb.models import Base


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
