"""ClickHouse connections (clickhouse-driver, native protocol) for the ingester, the KPI
endpoint and the migration command.

Why a pool and not one client: a ``clickhouse_driver.Client`` owns one socket and is not
safe to share between threads or greenlets (two queries on one socket interleave their
packets), and opening a connection per KPI request costs a handshake. :class:`Pool`
lends a client to one caller at a time and keeps a few idle ones; a client whose query
failed is dropped rather than returned, so a half-read socket is never reused.

Every wait is bounded so that an unreachable or stalled server costs a caller seconds,
not minutes: the TCP connect (``connect_timeout``), every socket read and write
(``send_receive_timeout``) and the server's own execution time
(``max_execution_time``). The URL may override any of them with query parameters
(``clickhouse://host:9000/db?connect_timeout=1``). Defaults come from environment
variables documented below (the lead may move them into ``ccweb.config``):

- ``CC_CLICKHOUSE_CONNECT_TIMEOUT_S`` (default 2): TCP connect and handshake.
- ``CC_CLICKHOUSE_TIMEOUT_S`` (default 10): socket reads/writes and the server-side
  execution limit of one statement (an insert of 1 MB takes milliseconds; ten seconds
  means the server is in trouble).

Settings sent with every query work on 18.16 and on current servers: nothing here uses
types or functions newer than 18.16 (no ``DateTime64``, no ``JSON``, no
``LowCardinality``, no ``JSONExtract*``), so no ``allow_experimental_*`` setting is
needed.

:func:`is_outage` tells a server that cannot take work right now (unreachable, timing
out, overloaded, read-only, not migrated yet) from a statement that is wrong for the
data, which the ingester needs to choose between holding a batch and blaming an entry.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from clickhouse_driver import Client
from clickhouse_driver import errors as ch_errors
from clickhouse_driver.util.helpers import parse_url

from ccweb.config import Settings, get_settings

CONNECT_TIMEOUT_S = float(os.environ.get("CC_CLICKHOUSE_CONNECT_TIMEOUT_S") or 2.0)
TIMEOUT_S = float(os.environ.get("CC_CLICKHOUSE_TIMEOUT_S") or 10.0)
MAX_IDLE = 4  # idle clients a pool keeps (web: concurrent KPI requests; worker: one thread)

_C = ch_errors.ErrorCodes
# Server error codes that describe the server's state, not the statement: it is
# overloaded, out of memory or disk, read-only, shutting down, timing out, or the schema
# is not there yet (a deployment that has not run the migrations: holding the batch is
# right, dead-lettering it would lose events over a missing `migrate` step).
_OUTAGE_CODES = frozenset(
    getattr(_C, name)
    for name in (
        "TIMEOUT_EXCEEDED",
        "SOCKET_TIMEOUT",
        "NETWORK_ERROR",
        "TOO_MANY_SIMULTANEOUS_QUERIES",
        "TOO_MANY_PARTS",
        "MEMORY_LIMIT_EXCEEDED",
        "NOT_ENOUGH_SPACE",
        "TABLE_IS_READ_ONLY",
        "READONLY",
        "ABORTED",
        "UNKNOWN_TABLE",
        "UNKNOWN_DATABASE",
        "TABLE_IS_DROPPED",
        "UNKNOWN_USER",
        "REQUIRED_PASSWORD",
        "WRONG_PASSWORD",
        "AUTHENTICATION_FAILED",
        "SYSTEM_ERROR",
        "CANNOT_ALLOCATE_MEMORY",
        "ALL_CONNECTION_TRIES_FAILED",
        "QUERY_WAS_CANCELLED",
        "DEADLOCK_AVOIDED",
    )
    if hasattr(_C, name)
) | {
    # codes clickhouse-driver does not name
    164,  # READONLY (user profile)
    202,  # TOO_MANY_SIMULTANEOUS_QUERIES
    236,  # ABORTED
    241,  # MEMORY_LIMIT_EXCEEDED
    243,  # NOT_ENOUGH_SPACE
    252,  # TOO_MANY_PARTS
    516,  # AUTHENTICATION_FAILED
}


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` (or what it was raised from) says ClickHouse cannot take work
    right now, rather than that the statement or its data is wrong."""
    seen: set[int] = set()
    err: BaseException | None = exc
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(
            err,
            ch_errors.NetworkError
            | ch_errors.SocketTimeoutError
            | ch_errors.UnexpectedPacketFromServerError
            | ch_errors.UnknownPacketFromServerError
            | socket.timeout
            | ConnectionError
            | EOFError,
        ):
            return True
        if isinstance(err, ch_errors.ServerException) and err.code in _OUTAGE_CODES:
            return True
        if isinstance(err, OSError) and not isinstance(err, FileNotFoundError):
            return True
        err = err.__cause__ or err.__context__
    return False


def client_kwargs(url: str) -> tuple[str, dict[str, Any]]:
    """``(host, kwargs)`` for ``Client``: the URL's own parameters win over the bounded
    defaults."""
    host, kwargs = parse_url(url)
    kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    kwargs.setdefault("send_receive_timeout", TIMEOUT_S)
    kwargs.setdefault("sync_request_timeout", min(TIMEOUT_S, 5.0))
    kwargs.setdefault("client_name", "ccweb")
    settings = dict(kwargs.pop("settings", None) or {})
    settings.setdefault("max_execution_time", int(max(1, TIMEOUT_S)))
    kwargs["settings"] = settings
    return host, kwargs


def new_client(url: str, database: str | None = None) -> Client:
    host, kwargs = client_kwargs(url)
    if database is not None:
        kwargs["database"] = database
    return Client(host, **kwargs)


def database_of(url: str) -> str:
    return str(parse_url(url)[1].get("database") or "default")


class Pool:
    """Clients for one URL, lent to one caller at a time (module docstring)."""

    def __init__(self, url: str, max_idle: int = MAX_IDLE) -> None:
        if not url:
            raise ValueError("ClickHouse is not configured (CLICKHOUSE_URL is empty)")
        self.url = url
        self._idle: queue.LifoQueue[Client] = queue.LifoQueue(maxsize=max_idle)

    @contextmanager
    def client(self) -> Iterator[Client]:
        try:
            c = self._idle.get_nowait()
        except queue.Empty:
            c = new_client(self.url)
        try:
            yield c
        except BaseException:
            c.disconnect()  # its socket may be mid-packet: never reuse it
            raise
        try:
            self._idle.put_nowait(c)
        except queue.Full:
            c.disconnect()

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().disconnect()
            except queue.Empty:
                return


_pools: dict[str, Pool] = {}
_pools_lock = threading.Lock()


def pool(settings: Settings | None = None) -> Pool:
    """The process's pool for ``settings.clickhouse_url`` (raises ``ValueError`` when
    ClickHouse is disabled). Keyed by URL so tests that switch databases get their own."""
    url = (settings or get_settings()).clickhouse_url
    with _pools_lock:
        p = _pools.get(url)
        if p is None:
            p = _pools[url] = Pool(url)
        return p


def reset_pools() -> None:
    """Drop every pooled client (tests; after a fork)."""
    with _pools_lock:
        for p in _pools.values():
            p.close()
        _pools.clear()


def ping(settings: Settings | None = None) -> bool:
    """True when ClickHouse answers ``SELECT 1`` within the bounded timeouts (``/ready``)."""
    try:
        with pool(settings).client() as c:
            return bool(c.execute("SELECT 1") == [(1,)])
    except Exception:
        return False
