"""Telling a store outage from a handler error, and waiting one out.

Why: a batch that fails because PostgreSQL or Redis cannot be reached says nothing about
the entries in it. Counting such failures toward the dead-letter limit dead-lettered
every in-flight entry during a two-minute database restart. Only errors that the same
entries would raise again against a healthy store (a bug, bad data, a constraint) are
the entries' fault; everything the store itself causes (it refused or dropped the
connection, it is shutting down or starting, out of connections or resources, too slow
to answer within a timeout, a failover replica refusing writes) is waited out.
"""

from __future__ import annotations

import random
import threading

import psycopg2
import redis
from sqlalchemy import exc as sa_exc

from ccweb.config import Settings

BURST_OUTAGE_ATTEMPTS = 6  # a one-off drain (--burst) gives up after this many in a row

# SQLSTATE classes/codes that describe the server or the connection, not the statement:
#   08 connection exception, 53 insufficient resources (too many connections, disk full,
#   out of memory), 57P01-03 admin/crash shutdown and "starting up", 58 system/I-O error,
#   57014 statement timeout or cancel (the server is too slow right now), 55P03 lock
#   timeout, 40 serialization failure / deadlock that outlived in_transaction's retries.
_OUTAGE_CLASSES = ("08", "53", "58", "40")
_OUTAGE_CODES = frozenset({"57P01", "57P02", "57P03", "57014", "55P03"})

_REDIS_OUTAGES: tuple[type[BaseException], ...] = (
    redis.ConnectionError,  # includes BusyLoadingError (a restarted Redis loading its data)
    redis.TimeoutError,
    redis.exceptions.ReadOnlyError,  # a replica during failover
    *(
        getattr(redis.exceptions, name)
        for name in ("ClusterDownError", "TryAgainError", "MasterDownError")
        if hasattr(redis.exceptions, name)
    ),
)


def _pg_outage(err: BaseException) -> bool:
    if isinstance(err, sa_exc.DBAPIError):
        if err.connection_invalidated:
            return True
        err = err.orig if err.orig is not None else err
    if isinstance(err, sa_exc.TimeoutError):  # the pool had no connection to give
        return True
    if not isinstance(err, psycopg2.Error):
        return isinstance(err, sa_exc.DBAPIError) and isinstance(
            err, sa_exc.OperationalError | sa_exc.InterfaceError
        )
    code = err.pgcode
    if code is None:
        # No SQLSTATE: the driver's own connection errors ("Connection refused", "server
        # closed the connection unexpectedly", "connection already closed").
        return isinstance(err, psycopg2.OperationalError | psycopg2.InterfaceError)
    return code in _OUTAGE_CODES or code[:2] in _OUTAGE_CLASSES


class SinkUnavailable(Exception):
    """Raised by a handler whose downstream system (Kafka, ClickHouse) cannot take the
    batch right now — refused, unreachable, timed out, overloaded. The worker treats it
    like a PostgreSQL or Redis outage: the batch is held and retried after a backoff,
    never dead-lettered, so the backlog waits in the stream until the sink returns.
    Raise it ``from`` the client's error; errors that say the data is wrong must not be
    wrapped."""


def is_store_outage(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it was raised from or while handling) says
    PostgreSQL, Redis or a sink (:class:`SinkUnavailable`) is unavailable rather than
    that the work itself is wrong."""
    seen: set[int] = set()
    err: BaseException | None = exc
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, (*_REDIS_OUTAGES, SinkUnavailable)) or _pg_outage(err):
            return True
        err = err.__cause__ or err.__context__
    return False


class Backoff:
    """Bounded exponential backoff with jitter: ``base``, 2×, 4×, … up to ``cap`` seconds,
    each drawn from the upper half of the step so that many workers restarting together
    do not retry in lockstep."""

    def __init__(self, base_s: float, cap_s: float) -> None:
        self.base_s = base_s
        self.cap_s = max(cap_s, base_s)
        self.failures = 0

    @classmethod
    def for_worker(cls, settings: Settings) -> Backoff:
        return cls(settings.worker_backoff_ms / 1000, settings.worker_backoff_max_ms / 1000)

    def next_delay(self) -> float:
        step = min(self.cap_s, self.base_s * 2 ** min(self.failures, 32))
        self.failures += 1
        return random.uniform(step / 2, step)

    def reset(self) -> None:
        self.failures = 0

    def wait(self, stop: threading.Event) -> None:
        """Sleep for the next delay, or until ``stop`` is set."""
        stop.wait(self.next_delay())
