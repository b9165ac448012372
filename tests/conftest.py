"""Shared fixtures: a real PostgreSQL database and a real Redis DB for this test run.

Each run creates its own database ``cc_test_<random>`` (migrated to head with Alembic)
and takes a Redis DB index nobody else holds (a lock key in DB 0) plus its own key
prefix, so concurrent runs never see each other's data. Between tests every table is
truncated and the Redis DB flushed. Nothing here mocks PostgreSQL or Redis.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ccweb.config import Settings, set_settings

SERVER_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_ID = secrets.token_hex(4)


def _admin_engine():  # type: ignore[no-untyped-def]
    url = make_url(Settings(database_url=SERVER_URL).sqlalchemy_url).set(database="postgres")
    return create_engine(url, isolation_level="AUTOCOMMIT")


def _claim_redis_db() -> int:
    base = redis.Redis.from_url(REDIS_URL)
    for n in range(1, 16):
        if base.set(f"cc-test-db-lock:{n}", RUN_ID, nx=True, ex=4 * 3600):
            return n
    raise RuntimeError("no free Redis DB index (1-15) for this test run")


@pytest.fixture(scope="session")
def settings() -> Iterator[Settings]:
    """Settings of this run: own database, own Redis DB, cheap password hashing."""
    db_name = f"cc_test_{RUN_ID}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    redis_db = _claim_redis_db()
    db_url = make_url(Settings(database_url=SERVER_URL).sqlalchemy_url).set(database=db_name)
    s = Settings.from_env(
        env="test",
        database_url=db_url.render_as_string(hide_password=False),
        redis_url=urlunsplit(urlsplit(REDIS_URL)._replace(path=f"/{redis_db}")),
        redis_prefix=f"cct{RUN_ID}",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        access_log=False,
        log_level="WARNING",
        # The connection budget of a test run (README, "Connection budget"): at most 10
        # per pool, 20 for this process, so a run fits beside `make run` on a server with
        # max_connections=100. Tests with more threads than connections (60 concurrent
        # debits) queue for a connection — still 10 transactions racing at the database —
        # so they wait up to 30 s instead of the production 1 s before giving up.
        db_pool_size=10,
        db_max_overflow=0,
        db_pool_timeout_s=30.0,
        # the sinks are off unless a test asks for them (tests/pipeline: sink_settings):
        # `make test` exports the servers it found, which must not turn every app and
        # worker of the suite into a Kafka producer and ClickHouse writer
        kafka_bootstrap_servers="",
        clickhouse_url="",
    )
    set_settings(s)
    from ccweb.manage import migrate

    migrate()
    yield s
    from ccweb import db

    db.engine().dispose()
    redis.Redis.from_url(s.redis_url).flushdb()
    redis.Redis.from_url(REDIS_URL).delete(f"cc-test-db-lock:{redis_db}")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def app(settings: Settings):  # type: ignore[no-untyped-def]
    from ccweb import create_app

    application = create_app(settings)
    application.config["TESTING"] = False  # keep the production error handling
    return application


def reset_process_caches() -> None:
    """Forget what this process remembers about the database's contents (flags, round id
    blocks, fairness seeds, achievement catalog, signing keys, shop catalog) and switch
    the fast path back on: needed whenever the tables are emptied or the process is
    pointed at another database."""
    from ccweb import effects
    from ccweb.flags.service import invalidate_cache
    from ccweb.games import config_document, round_ids, seed_cache
    from ccweb.liveops.achievements import forget_catalog
    from ccweb.shop import catalog, keyring

    invalidate_cache()
    keyring.forget()  # signing keys cached for a table that was just emptied
    catalog.forget()
    round_ids.discard()  # the sequences restart with the tables
    seed_cache.clear()
    config_document.forget()  # game_configs was emptied: store each version again
    forget_catalog()
    effects.FAST_PATH_ENABLED = True


@pytest.fixture(autouse=True)
def clean_state(settings: Settings) -> Iterator[None]:
    """Every test starts from empty tables and an empty Redis DB."""
    from ccweb import db
    from ccweb.models import Base

    set_settings(settings)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine().begin() as conn:
        # waits for the locks of a previous test's stragglers, however slow the box is:
        # the production statement timeout is not meant for this
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    redis.Redis.from_url(settings.redis_url).flushdb()
    reset_process_caches()
    yield
    set_settings(settings)


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture
def rds(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url, decode_responses=True)


@pytest.fixture
def clock() -> Iterator[Any]:
    """The application's clock (``ccweb.clock``), frozen at the real time and moved only
    by ``clock.advance(seconds)``: a test crosses a token expiry, a lockout or an event
    window at once instead of sleeping, and states exactly when "now" is. Only this
    process's application code sees it (not PostgreSQL's ``now()``, Redis TTLs, or
    server processes started by the test)."""
    from ccweb import clock as app_clock

    fake = app_clock.FakeClock()
    app_clock.install(fake)
    yield fake
    app_clock.install(None)


@pytest.fixture
def seeded(settings: Settings) -> None:
    """The production seed (admin, invite code 5858, demo players, flags)."""
    from ccweb.manage import seed

    seed()


@pytest.fixture
def subprocess_env(settings: Settings) -> dict[str, str]:
    """Environment for running the real entry points (worker, server) against this run."""
    return process_environment(settings)


def process_environment(settings: Settings) -> dict[str, str]:
    """The environment of a real entry point run against ``settings`` (also used by
    package-scoped fixtures, which cannot take the function-scoped ``subprocess_env``)."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        CC_REDIS_PREFIX=settings.redis_prefix,
        CC_ENV="test",
        CC_ARGON2_TIME_COST="1",
        CC_ARGON2_MEMORY_KIB="1024",
        CC_LOG_LEVEL="WARNING",
        KAFKA_BOOTSTRAP_SERVERS="",  # sinks off, as in `settings`
        CLICKHOUSE_URL="",
    )
    return env


def pytest_collection_modifyitems(items: list[Any]) -> None:
    for item in items:
        item.add_marker(pytest.mark.timeout(120))
