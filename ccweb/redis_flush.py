"""After-commit Redis work, sent for many requests in one pipeline ("group commit").

Every money write ends with a little Redis work: the fast-path publish of its events and
the bump of the player's cache version (which must land before the response, so that
the next read shows the new balance). In redis-py most of a pipeline's cost is fixed per
``execute`` — pool checkout, the connection health check, the send and the receive under
gevent — about 0.25 ms of web CPU, i.e. ~15 % of a spin. Under load several requests
finish their SQL at nearly the same moment, so in the gevent web server one flusher
greenlet per process sends whatever has queued up in ONE pipeline: the first request
wakes it, the others that arrive while its round trip is in flight ride the next one.
Each request still waits until its own commands were sent, so read-your-writes holds.

Outside a gevent server (tests, the worker, scripts) :func:`run` simply executes the
commands itself. Best effort either way: a failure is logged, never raised (the relay
publishes what the fast path missed; cached views also expire by TTL).

A Redis that hangs costs a request at most ``CC_REDIS_TIMEOUT_S``: every command is
bounded by the client's socket timeout (:mod:`ccweb.redis_client`), and a request
waits for the flusher no longer than that either — its commands may be queued behind a
pipeline that is itself waiting out the timeout, and the success the player already
earned must not wait for a best-effort publish.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from redis.exceptions import NoScriptError

from ccweb.config import get_settings
from ccweb.redis_client import get_redis, reload_scripts

log = logging.getLogger(__name__)

Fill = Callable[[Any], None]  # queues commands on a pipeline


def execute(fills: list[Fill]) -> int:
    """One pipeline with every fill's commands; returns how many commands failed.
    Commands refused with NOSCRIPT (Redis restarted or flushed its scripts) are sent
    once more after reloading the scripts."""
    client = get_redis()
    pipe = client.pipeline(transaction=False)
    for fill in fills:
        try:
            fill(pipe)
        except Exception:  # one caller's bad fill must not cost the others their commands
            log.exception("after-commit Redis fill failed")
    if not len(pipe):
        return 0
    stack = list(pipe.command_stack)
    results = pipe.execute(raise_on_error=False)
    forgotten = [cmd for cmd, r in zip(stack, results, strict=True) if isinstance(r, NoScriptError)]
    errors = [r for r in results if isinstance(r, Exception) and not isinstance(r, NoScriptError)]
    if forgotten:
        reload_scripts(client)
        again = client.pipeline(transaction=False)
        for args, options in forgotten:
            again.execute_command(*args, **options)
        errors += [r for r in again.execute(raise_on_error=False) if isinstance(r, Exception)]
    if errors:
        log.warning("after-commit Redis batch: %d command(s) failed: %r", len(errors), errors[0])
    return len(errors)


class GroupFlusher:
    """One greenlet that sends the queued fills of all waiting requests at once."""

    def __init__(self) -> None:
        import gevent
        from gevent.event import Event

        self._event = Event
        self._pending: list[tuple[list[Fill], Any]] = []
        self._wake = Event()
        self.flushes = 0  # pipelines sent (tests and curiosity)
        self.submitted = 0
        self.late = 0  # submitters that stopped waiting (Redis slow or hung)
        self._greenlet = gevent.spawn(self._loop)

    @property
    def dead(self) -> bool:
        return bool(self._greenlet.dead)

    def submit(self, fills: list[Fill], wait: bool = True) -> None:
        done = self._event()
        self._pending.append((fills, done))
        self.submitted += 1
        self._wake.set()
        if not wait:
            return
        limit = get_settings().redis_timeout_s
        if not done.wait(limit):
            self.late += 1
            log.warning("after-commit Redis flush did not finish in %.1f s", limit)

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            try:
                execute([fill for fills, _ in batch for fill in fills])
            except Exception:  # Redis down: logged; the callers carry on
                log.warning("after-commit Redis batch failed", exc_info=True)
            finally:
                self.flushes += 1
                for _, done in batch:
                    done.set()


_flusher: GroupFlusher | None = None
_flusher_pid = 0
_enabled = False


def enable_group_flush(enabled: bool = True) -> None:
    """Called by the gevent web server in each process (after any fork)."""
    global _enabled, _flusher
    _enabled = enabled
    _flusher = None


def flusher() -> GroupFlusher:
    """This process's flusher (a new one after a fork, or if the greenlet was killed)."""
    global _flusher, _flusher_pid
    if _flusher is None or _flusher_pid != os.getpid() or _flusher.dead:
        _flusher, _flusher_pid = GroupFlusher(), os.getpid()
    return _flusher


def run(fills: list[Fill], wait: bool = True) -> None:
    """Send ``fills``' commands and return once they were sent (or failed, logged).
    ``wait=False`` (gevent server only) returns at once: for writes whose loss or delay
    costs nothing but a little work later, such as filling a cache entry."""
    if not fills:
        return
    if _enabled:
        flusher().submit(fills, wait=wait)
        return
    try:
        execute(fills)
    except Exception:
        log.warning("after-commit Redis batch failed", exc_info=True)
