"""Bounds on every wait for PostgreSQL: connecting, a statement, an idle transaction.

Why each bound, and where it is enforced:

* ``statement_timeout`` and ``idle_in_transaction_session_timeout`` (server side, set
  per connection by :func:`connect_args`): a runaway statement is cancelled and the
  connection stays usable; a transaction left open (a request stuck elsewhere while
  holding it) is ended by the server instead of holding locks and the outbox relay's
  snapshot back.
* ``connect_timeout``, TCP keepalives and ``tcp_user_timeout`` (libpq, blocking
  processes such as the worker): a server host that is gone is noticed in seconds, not
  after the kernel's many-minute retransmission schedule.
* The client-side bound (:func:`bound_waits`, gevent processes): a server that
  is *frozen* (SIGSTOP, a paused VM, a storage stall) enforces none of the above, and
  its kernel still completes handshakes and acknowledges our packets, so keepalives and
  ``tcp_user_timeout`` notice nothing either. Under gevent psycopg2 runs every
  operation asynchronously and calls a *wait callback* while it waits for the socket
  (psycogreen installs one without a limit; libpq also ignores ``connect_timeout`` in
  this mode). Ours gives up after ``CC_DB_CONNECT_TIMEOUT_S`` while connecting and after
  the statement timeout plus :data:`ANSWER_MARGIN_S` for any other round trip — so a
  server that is merely slow cancels the statement itself first (keeping the
  connection), and only a server that does not answer at all trips this bound.

When the callback gives up, psycopg2 closes the connection (it cannot know what state
the server left it in: it is never returned to the pool as if usable) and raises an
``OperationalError``; SQLAlchemy sees an error on a closed connection as a disconnect and
also retires every connection the pool held at that moment (they may be stuck on the
same frozen server). The request answers 503 (:mod:`ccweb.errors`); once the server
answers again new connections simply work, without a restart.

A statement that was already sent may still run when a frozen server thaws: a 503 after
a timeout leaves the client unsure, as any lost connection does, and a retry with the
same ``X-Idempotency-Key`` settles it.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

import psycopg2
from psycopg2 import extensions
from sqlalchemy import event
from sqlalchemy.engine import Engine

from ccweb.config import Settings

ANSWER_MARGIN_S = 0.5  # round trip + commit beyond the server's own statement timeout

# Keepalive probes on an idle connection (e.g. waiting for a result): a peer that is
# gone is noticed after about idle + interval x count = 25 s; tcp_user_timeout bounds
# data left unacknowledged (a send to a vanished host) the same way.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 25_000,
}


def connect_args(settings: Settings, application_name: str) -> dict[str, Any]:
    """psycopg2 ``connect()`` arguments for the application's pools."""
    server_limits = (
        f"-c statement_timeout={int(settings.db_statement_timeout_ms)}"
        f" -c idle_in_transaction_session_timeout={int(settings.db_idle_tx_timeout_ms)}"
    )
    return {
        "application_name": application_name,
        # whole seconds, and libpq treats anything below 2 as 2
        "connect_timeout": max(2, math.ceil(settings.db_connect_timeout_s)),
        "options": server_limits,
        **KEEPALIVES,
    }


def answer_timeout_s(settings: Settings) -> float | None:
    """How long a gevent process waits for PostgreSQL to answer one round trip (None:
    no bound, when the statement timeout is switched off with 0)."""
    if settings.db_statement_timeout_ms <= 0:
        return None
    return settings.db_statement_timeout_ms / 1000 + ANSWER_MARGIN_S


def gevent_patched() -> bool:
    """True in a process that gevent monkey-patched (the web server): psycopg2 must then
    wait cooperatively, and that wait is where the client-side bound lives."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("socket"))


def bound_waits(engine: Engine, settings: Settings) -> None:
    """In a gevent process, make psycopg2 wait cooperatively with a deadline
    (:func:`bounded_wait`) for ``engine``'s connections. Installed now and checked again
    before every new connection: an entry point that calls psycogreen's
    ``patch_psycopg()`` after the app was created (gunicorn's ``post_worker_init``)
    would otherwise replace it with a wait that has no deadline."""
    if not gevent_patched():
        return

    def ensure(*_connect_args: Any) -> None:
        wait = bounded_wait(settings)
        if extensions.get_wait_callback() is not wait:
            extensions.set_wait_callback(wait)

    ensure()
    event.listen(engine, "do_connect", ensure)


_wait: tuple[tuple[float, float | None], Callable[..., None]] | None = None


def bounded_wait(settings: Settings) -> Callable[..., None]:
    """psycogreen's gevent wait callback with a deadline on each operation: the
    connect timeout while connecting, :func:`answer_timeout_s` otherwise (one callback
    per pair of bounds, so several engines do not replace each other's)."""
    global _wait
    bounds = (settings.db_connect_timeout_s, answer_timeout_s(settings))
    if _wait is not None and _wait[0] == bounds:
        return _wait[1]
    from gevent.socket import wait_read, wait_write

    connect_s, answer_s = bounds

    def wait(conn: Any, timeout: float | None = None) -> None:
        limit = connect_s if conn.status == extensions.STATUS_SETUP else answer_s
        deadline = None if limit is None else time.monotonic() + limit
        while True:
            state = conn.poll()
            if state == extensions.POLL_OK:
                return
            remaining = None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _no_answer(limit)
            try:
                if state == extensions.POLL_READ:
                    wait_read(conn.fileno(), remaining)
                elif state == extensions.POLL_WRITE:
                    wait_write(conn.fileno(), remaining)
                else:
                    raise psycopg2.OperationalError(f"bad result from poll: {state!r}")
            except TimeoutError:  # socket.timeout, from gevent
                raise _no_answer(limit) from None

    _wait = (bounds, wait)
    return wait


def _no_answer(limit: float | None) -> psycopg2.OperationalError:
    return psycopg2.OperationalError(f"PostgreSQL did not answer within {limit} s")
