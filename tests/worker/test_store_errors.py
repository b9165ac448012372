"""Which errors the worker waits out (store outages) and which count against an entry
(handler errors), decided on real errors raised by the real drivers: a refused
PostgreSQL or Redis connection, a server-side statement timeout, a duplicate key, bad
input. Misclassifying one way dead-letters entries during an outage; the other way
retries a poison entry forever without dead-lettering it."""

from __future__ import annotations

import json

import psycopg2
import pytest
import redis
from sqlalchemy import create_engine, text

from ccweb.config import Settings
from ccweb.db import in_transaction
from tests.processes import free_port
from worker.outage import Backoff, SinkUnavailable, is_store_outage


def raised(fn) -> BaseException:  # type: ignore[no-untyped-def]
    with pytest.raises(Exception) as info:
        fn()
    return info.value


def closed_port_url() -> str:
    return f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"


def test_refused_postgresql_connections_are_outages():
    raw = raised(lambda: psycopg2.connect(closed_port_url(), connect_timeout=2))
    engine = create_engine(closed_port_url().replace("postgresql://", "postgresql+psycopg2://"))
    wrapped = raised(lambda: engine.connect())
    assert isinstance(raw, psycopg2.OperationalError) and raw.pgcode is None
    assert is_store_outage(raw)
    assert is_store_outage(wrapped)  # sqlalchemy.exc.OperationalError around it


def test_a_connection_closed_under_the_session_is_an_outage(settings: Settings):
    conn = psycopg2.connect(settings.database_url.replace("+psycopg2", ""))
    conn.close()
    with pytest.raises(psycopg2.InterfaceError) as info, conn.cursor() as cur:
        cur.execute("SELECT 1")
    assert is_store_outage(info.value)


def test_statement_timeout_is_an_outage_but_bad_data_and_constraints_are_not(
    settings: Settings,
):
    def timed_out(s):  # type: ignore[no-untyped-def]
        s.execute(text("SET LOCAL statement_timeout = 10"))
        s.execute(text("SELECT pg_sleep(1)"))

    def duplicate(s):  # type: ignore[no-untyped-def]
        s.execute(text("CREATE TEMP TABLE t (k int PRIMARY KEY)"))
        s.execute(text("INSERT INTO t VALUES (1), (1)"))

    def bad_uuid(s):  # type: ignore[no-untyped-def]
        s.execute(text("SELECT CAST('not-a-uuid' AS uuid)"))

    assert is_store_outage(raised(lambda: in_transaction(timed_out)))  # 57014
    assert not is_store_outage(raised(lambda: in_transaction(duplicate)))  # 23505
    assert not is_store_outage(raised(lambda: in_transaction(bad_uuid)))  # 22P02


def test_redis_refused_or_silent_is_an_outage_but_a_wrong_type_is_not(rds):
    down = redis.Redis(port=free_port(), socket_connect_timeout=1)
    assert is_store_outage(raised(down.ping))
    rds.set("plain", "x")
    assert not is_store_outage(raised(lambda: rds.xadd("plain", {"a": "b"})))  # WRONGTYPE


def test_an_error_raised_while_handling_an_outage_is_still_an_outage():
    """A handler that turns a connection error into its own exception (``raise … from``
    or raising inside ``except``) still met an outage."""

    def wrapping() -> None:
        try:
            psycopg2.connect(closed_port_url(), connect_timeout=2)
        except psycopg2.OperationalError as exc:
            raise RuntimeError("could not load the player") from exc

    assert is_store_outage(raised(wrapping))
    assert not is_store_outage(raised(lambda: json.loads("{not json")))


def test_a_sink_that_cannot_take_the_batch_is_an_outage_and_bad_data_is_not():
    try:
        try:
            raise ConnectionRefusedError("clickhouse at 127.0.0.1:9000")
        except ConnectionRefusedError as exc:
            raise SinkUnavailable("clickhouse") from exc
    except SinkUnavailable as wrapped:
        assert is_store_outage(wrapped)
    assert not is_store_outage(ValueError("bad envelope"))
    assert not is_store_outage(ConnectionRefusedError("unwrapped: the handler did not say"))


def test_backoff_doubles_up_to_its_cap_and_restarts_after_reset():
    backoff = Backoff(0.1, 1.0)
    delays = [backoff.next_delay() for _ in range(8)]
    steps = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    assert all(step / 2 <= d <= step for d, step in zip(delays, steps, strict=True))
    backoff.reset()
    assert 0.05 <= backoff.next_delay() <= 0.1
