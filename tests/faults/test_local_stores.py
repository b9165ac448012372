"""The fault fixtures themselves: a stopped store really refuses, a paused one really
hangs (existing connections included), and both work again afterwards with their data.
Every other fault test relies on this; a ``pause()`` that only stopped the postmaster
would let existing connections carry on and make those tests prove nothing."""

from __future__ import annotations

import http.client
import json
import threading

import psycopg2
import pytest
import redis

from tests.factories import create_user
from tests.faults.stores import FaultStack, LocalPostgres, LocalRedis


def _in_thread(fn):  # type: ignore[no-untyped-def]
    """Run ``fn`` in a daemon thread; returns (thread, result list)."""
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    return t, out


def test_postgres_stop_refuses_and_start_keeps_the_data(local_pg: LocalPostgres):
    conn = psycopg2.connect(local_pg.url, connect_timeout=5)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS kept (v int); INSERT INTO kept VALUES (7)")

    local_pg.stop()

    assert not local_pg.running
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(local_pg.url, connect_timeout=2)
    with pytest.raises(psycopg2.Error), conn.cursor() as cur:  # its backend was terminated
        cur.execute("SELECT 1")

    local_pg.start()

    again = psycopg2.connect(local_pg.url, connect_timeout=5)
    with again.cursor() as cur:
        cur.execute("SELECT sum(v) FROM kept")
        assert cur.fetchone() == (7,)
    again.close()


def test_postgres_pause_hangs_existing_and_new_connections_until_resumed(
    local_pg: LocalPostgres,
):
    conn = psycopg2.connect(local_pg.url, connect_timeout=5)  # its backend exists before

    local_pg.pause()
    try:

        def query() -> object:
            with conn.cursor() as cur:
                cur.execute("SELECT 41 + 1")
                return cur.fetchone()

        thread, result = _in_thread(query)
        thread.join(1.5)
        assert thread.is_alive() and not result  # no answer while its backend is stopped
        with pytest.raises(psycopg2.OperationalError):  # the startup packet is never answered
            psycopg2.connect(local_pg.url, connect_timeout=2)
    finally:
        local_pg.resume()

    thread.join(10)
    assert result == [(42,)]
    fresh = psycopg2.connect(local_pg.url, connect_timeout=5)
    fresh.close()
    conn.close()


def test_postgres_kill_then_start_recovers(local_pg: LocalPostgres):
    pids = local_pg.pids()
    assert len(pids) > 1  # postmaster and its auxiliary processes

    local_pg.kill()

    assert not local_pg.running
    local_pg.start()
    conn = psycopg2.connect(local_pg.url, connect_timeout=5)
    conn.close()


def test_redis_stop_pause_and_back(local_redis: LocalRedis):
    client = local_redis.client(socket_timeout=1)
    client.set("k", "v")

    local_redis.pause()
    try:
        with pytest.raises(redis.TimeoutError):
            client.get("k")
    finally:
        local_redis.resume()
    client = local_redis.client(socket_timeout=1)
    assert client.get("k") == "v"

    local_redis.stop()
    with pytest.raises(redis.ConnectionError):
        local_redis.client().ping()

    local_redis.start()
    assert client.ping() is True
    assert client.get("k") is None  # no persistence: a restarted Redis is empty


def test_stack_serves_the_real_server_on_the_local_stores(fault_stack: FaultStack):
    """The stack's database is migrated and seeded, and ``python -m ccweb.server`` run
    with ``stack.env`` answers from the local stores (a stopped local PostgreSQL makes
    its readiness check fail, so it is not talking to the shared one)."""
    assert fault_stack.scalar("SELECT count(*) FROM invite_codes WHERE code = '5858'") == 1
    _, port = fault_stack.start_server()

    def ready() -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        conn.request("GET", "/ready")
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())

    assert ready()[0] == 200
    fault_stack.pg.stop()
    status, body = ready()
    assert status == 503, body
    fault_stack.pg.start()


def test_inprocess_code_runs_against_the_stack(fault_stack: FaultStack, fault_inprocess):
    user = create_user(site_id="inproc-user")

    assert fault_stack.scalar("SELECT id FROM users WHERE site_id = 'inproc-user'") == user["id"]
