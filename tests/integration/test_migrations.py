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
