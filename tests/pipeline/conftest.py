"""Fixtures for pipeline tests: the real ClickHouse server and Kafka-protocol broker of
this run, and private ones a fault test may stop.

`make test` finds or starts both sinks (``scripts/services.py``) and passes them as
CLICKHOUSE_URL / KAFKA_BOOTSTRAP_SERVERS; running pytest directly falls back to the
local dev servers (clickhouse://127.0.0.1:9000/default, 127.0.0.1:9092). A sink that
does not answer FAILS the tests that need it with a message saying so — never a skip:
a pipeline test that silently does not run proves nothing.

Session fixtures:

- ``clickhouse_url`` — the server's URL with the database replaced by this run's own
  ``cc_test_<hex>`` (created here, dropped at the end), so concurrent runs never see
  each other's tables. The database is shared by every test of the run: create your
  tables (or apply the migrations) once, and keep tests apart by their own ids or by
  truncating the tables you own.
- ``kafka_bootstrap`` — the broker's bootstrap string.
- ``topic_prefix`` — a prefix unique to this run (``cct<hex>.``, the form
  ``ccweb.kafka.topics.topic_name`` expects), for every topic a test creates. Tansu
  cannot delete what a run leaves behind cheaply; the prefix keeps runs apart.

Function fixtures:

- ``ch`` — a clickhouse-driver ``Client`` on ``clickhouse_url`` (short timeouts).
- ``sink_settings`` — this process's ``Settings`` with ``clickhouse_url`` and
  ``kafka_bootstrap_servers`` pointing at the two above (and CC_KAFKA_TOPIC_PREFIX set
  to ``topic_prefix``) for the test; restored afterwards.

Private servers (from :mod:`tests.pipeline.sinks`): ``local_clickhouse``,
``local_tansu`` (module scope), healed after every test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

import pytest
from clickhouse_driver import Client

from ccweb.config import Settings, set_settings
from scripts import services
from tests.conftest import RUN_ID
from tests.pipeline.sinks import ch_client, heal_private_sinks, local_clickhouse, local_tansu

__all__ = ["ch_client", "heal_private_sinks", "local_clickhouse", "local_tansu"]

CLICKHOUSE_SERVER_URL = os.environ.get("CLICKHOUSE_URL", "clickhouse://127.0.0.1:9000/default")
KAFKA_BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
TOPIC_PREFIX_ENV = "CC_KAFKA_TOPIC_PREFIX"  # read by ccweb.kafka.producer.topic_prefix()


def _unreachable(var: str, value: str) -> str:
    what = f"{var}={value!r}" if value else f"{var} is empty (the sink is disabled)"
    return (
        f"pipeline tests need a real server: {what} does not answer. `make test` finds or"
        f" starts one (scripts/services.py up; CC_SINKS=0 disables the sinks), or point"
        f" {var} at your own."
    )


def with_database(url: str, database: str) -> str:
    """``url`` (clickhouse://…/<db>) naming ``database`` instead."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
def clickhouse_url() -> Iterator[str]:
    """This run's own database on the ClickHouse server (module docstring)."""
    if not CLICKHOUSE_SERVER_URL or not services.ch_answers(CLICKHOUSE_SERVER_URL):
        pytest.fail(_unreachable("CLICKHOUSE_URL", CLICKHOUSE_SERVER_URL), pytrace=False)
    database = f"cc_test_{RUN_ID}"
    admin = ch_client(CLICKHOUSE_SERVER_URL)
    admin.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
    try:
        yield with_database(CLICKHOUSE_SERVER_URL, database)
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {database}")
        admin.disconnect()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The broker's bootstrap servers, proven to answer a Kafka request."""
    if not KAFKA_BOOTSTRAP or not services.kafka_answers(KAFKA_BOOTSTRAP):
        pytest.fail(_unreachable("KAFKA_BOOTSTRAP_SERVERS", KAFKA_BOOTSTRAP), pytrace=False)
    return KAFKA_BOOTSTRAP


@pytest.fixture(scope="session")
def topic_prefix() -> str:
    """Topic-name prefix of this run: ``cct<hex>.``."""
    return f"cct{RUN_ID}."


@pytest.fixture
def ch(clickhouse_url: str) -> Iterator[Client]:
    client = ch_client(clickhouse_url)
    yield client
    client.disconnect()


@pytest.fixture
def sink_settings(
    settings: Settings,
    clickhouse_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Settings]:
    """This process's settings with both sinks configured (this run's database and
    topic prefix) for one test."""
    monkeypatch.setenv(TOPIC_PREFIX_ENV, topic_prefix)
    configured = replace(
        settings, clickhouse_url=clickhouse_url, kafka_bootstrap_servers=kafka_bootstrap
    )
    set_settings(configured)
    yield configured
    set_settings(settings)
