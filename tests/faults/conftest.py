"""Fixtures for fault tests: private PostgreSQL and Redis that a test may stop, kill and
pause, and the real server/worker processes run against them.

Fault tests never touch the shared servers (127.0.0.1:5432 / :6379): they are other
runs' and other agents' stores, and a SIGSTOP there would hang everyone. Everything here
runs on instances started for the test module (see :mod:`tests.faults.stores`).

Fixtures (all module-scoped except ``fault_inprocess``):

- ``local_pg`` — :class:`~tests.faults.stores.LocalPostgres`: ``.url`` (database
  ``postgres``), ``.url_for(db)``, ``.stop()`` (fast shutdown), ``.start()`` (same port
  and data), ``.kill()`` (SIGKILL all its processes), ``.pause()`` / ``.resume()``
  (SIGSTOP / SIGCONT of the postmaster and every backend), ``.pids()``, ``.log_tail()``.
- ``local_redis`` — :class:`~tests.faults.stores.LocalRedis`: ``.url``, ``.stop()``
  (SIGTERM), ``.start()`` (same port, empty data set), ``.kill()``, ``.pause()`` /
  ``.resume()``, ``.client()`` (short socket timeouts).
- ``fault_stack`` — :class:`~tests.faults.stores.FaultStack` on both: database
  ``casino_faults`` created, migrated and seeded (``python -m ccweb.manage setup``:
  invite code 5858, admin, demo players), ``.env`` (DATABASE_URL, REDIS_URL,
  CC_REDIS_PREFIX, CC_ENV=test, cheap argon2, CC_ACCESS_LOG=0, … for subprocesses:
  add your own settings as ``{**stack.env, "CC_…": "…"}`` or as keyword arguments
  below), ``.settings`` (the same as a ``Settings``), ``.start_server(processes=1,
  **env)`` → ``(proc, port)``, ``.start_worker(*args, **env)`` → ``proc`` (output in
  ``proc.log_path``, read with ``tests.processes.log_text``), ``.sql(query, params)``
  and ``.scalar(...)`` (a fresh psycopg2 connection each call, connect timeout 5 s),
  ``.rds()``, ``.manage(*args)``, ``.reset()`` (empty tables + Redis, seed again).
  The database is shared by the module's tests: give each test its own players, or call
  ``.reset()``.
- ``fault_inprocess`` (function) — points *this* process's ccweb (settings, engine,
  Redis client, caches) at ``fault_stack`` for the test, so ``tests.factories`` and the
  services can be used directly; everything is restored afterwards.

After every test, processes started through the stack are stopped (SIGTERM, then
SIGKILL) and both stores are resumed/started again, so a failing test cannot hand the
next one a paused server; at the end of the module the servers are killed and their
data directories removed.

``clean_state`` overrides the autouse fixture of ``tests/conftest.py``: fault tests do
not use the shared test database, so they do not create or truncate it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ccweb.config import Settings
from tests.faults.stores import FaultStack, LocalPostgres, LocalRedis

_stacks: list[FaultStack] = []
_stores: list[LocalPostgres | LocalRedis] = []


@pytest.fixture(scope="module")
def local_pg() -> Iterator[LocalPostgres]:
    pg = LocalPostgres()
    _stores.append(pg)
    try:
        pg.start()
        yield pg
    finally:
        _stores.remove(pg)
        pg.destroy()


@pytest.fixture(scope="module")
def local_redis() -> Iterator[LocalRedis]:
    rds = LocalRedis()
    _stores.append(rds)
    try:
        rds.start()
        yield rds
    finally:
        _stores.remove(rds)
        rds.destroy()


@pytest.fixture(scope="module")
def fault_stack(
    local_pg: LocalPostgres, local_redis: LocalRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FaultStack]:
    stack = FaultStack(local_pg, local_redis, tmp_path_factory.mktemp("fault-logs"))
    stack.manage("setup")
    _stacks.append(stack)
    try:
        yield stack
    finally:
        _stacks.remove(stack)
        stack.after_test()


@pytest.fixture(autouse=True)
def clean_state() -> Iterator[None]:
    """After each test: stop its processes and bring the local stores back (see the
    module docstring). Replaces the shared-database cleanup of tests/conftest.py."""
    yield
    for stack in list(_stacks):
        stack.after_test()
    for store in list(_stores):
        store.heal()


@pytest.fixture
def fault_inprocess(fault_stack: FaultStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """This process's ccweb pointed at the fault stack for one test (settings, the
    engines, the Redis client, per-process caches); the previous ones come back after."""
    from ccweb import config, db, redis_client
    from tests.conftest import reset_process_caches

    for mod, name in (
        (config, "_current"),
        (db, "_engine"),
        (db, "_factory"),
        (db, "_ro_engine"),
    ):
        monkeypatch.setattr(mod, name, None)
    monkeypatch.setattr(redis_client, "_clients", {})
    settings = fault_stack.settings
    config.set_settings(settings)
    reset_process_caches()
    try:
        yield settings
    finally:
        for engine in (db._engine, db._ro_engine):
            if engine is not None:
                engine.dispose()
        reset_process_caches()
    # monkeypatch's undo (after this fixture) restores the previous settings and engines
