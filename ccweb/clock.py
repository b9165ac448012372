"""The time the application decides with: one seam, so tests move time instead of sleeping.

Production reads the system clock. Tests install a :class:`FakeClock` (the ``clock``
fixture) and ``advance()`` it: an access token expires, a login lockout passes, an event
window closes — at once, and without patching ``time.time`` for the whole process (which
would also move gevent's, redis-py's, PyJWT's and the logger's time).

Import the module and call ``clock.time()`` / ``clock.utcnow()`` (not ``from ccweb.clock
import time``, which would keep the clock of import time). ``time`` is the system function
itself, rebound only by :func:`install`: a hot path pays one module-attribute lookup, no
extra Python frame.

Which clock decides what:

* Decisions the application makes — is a token expired, is an event window open, which
  UTC day or mission period it is, when a lockout ends, how long a cached view may live —
  read this clock, once per request. SQL that decides with time takes that instant as a
  parameter (``:now``) instead of calling PostgreSQL's ``now()``: Python and SQL cannot
  then disagree about the moment (a claim judged open in Python but closed in SQL), and
  tests control both.
* Timestamps that only record when something happened (``created_at``, ``used_at``,
  ``revoked_at``, ``claimed_at``, ``updated_at``) stay PostgreSQL's ``now()``: one clock
  for the whole database, whichever host wrote the row.
* Intervals a store measures against its own records keep that store's clock: an
  idempotency key going stale (``created_at < now() - stale``, both PostgreSQL's), Redis
  TTLs (a cached view expires when Redis says so), stream idle times. Both ends are the
  same clock, so host skew cannot matter; tests of those wait (briefly) for the store.
* Timeouts and refresh periods inside one process use ``time.monotonic()``: durations,
  not moments.
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch (UTC), like ``time.time()``."""
        ...


time: Callable[[], float] = _time.time


def utcnow() -> datetime:
    """The current instant as a timezone-aware UTC datetime."""
    return datetime.fromtimestamp(time(), UTC)


def install(source: Clock | None) -> None:
    """Make ``source`` the application's clock (None: the system clock again)."""
    global time
    time = _time.time if source is None else source.time


class FakeClock:
    """A clock that stands still until told to move: a test states exactly when "now" is.

    It starts at the current whole second (so rows PostgreSQL stamps with ``now()``
    during the test sit within moments of it, and its moments survive every round trip
    exactly: Lua, for one, prints numbers with 14 digits)."""

    def __init__(self, start: float | None = None) -> None:
        self._now = float(int(_time.time())) if start is None else start
        self._lock = threading.Lock()

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self._now, UTC)
