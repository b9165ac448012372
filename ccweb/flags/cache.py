"""Each process's copy of the flags, kept current by a Redis pub/sub announcement.

Reading a flag is a dictionary lookup: no database or Redis round trip on any request.
A write commits the row and then PUBLISHes ``<prefix>:flags:changed``; every process
(web and worker) runs ONE listener thread (a greenlet in the gevent web server) that
reloads the whole table (a few dozen rows, one query) when it hears it — so a change is
visible everywhere within milliseconds, well inside SPEC §3's second.

What can go wrong, and why it still converges:
- a process that was not listening (Redis restarting, the listener reconnecting) may miss
  an announcement: the listener reloads after every (re)subscription, and every
  ``RESYNC_S`` anyway, so a missed message costs at most that long;
- the first read of a process loads synchronously; if PostgreSQL is down then, the
  registry defaults serve and the load is retried at most once a second;
- the writer's own process does not wait for its message: it reloads right after commit.
A fork (the pre-fork web server) gets a fresh listener: the thread is tied to its pid.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import redis
from sqlalchemy import text

from ccweb import db
from ccweb.config import Settings
from ccweb.flags.rules import Flag
from ccweb.redis_client import PerRedis
from ccweb.redis_listen import listen_with_backoff

log = logging.getLogger(__name__)

RESYNC_S = 30.0  # full reload even without an announcement
RETRY_S = 1.0  # after a failed load, serve what we have (or defaults) this long
BACKOFF_S = (0.2, 5.0)

_SELECT = text(
    "SELECT key, value, value_type, off_value, client_visible, description,"
    " rollout_percent, target_tiers, target_segments, version, updated_at"
    " FROM feature_flags ORDER BY key"
)


def channel(settings: Settings) -> str:
    return f"{settings.redis_prefix}:flags:changed"


def load() -> dict[str, Flag]:
    with db.engine().connect() as conn:
        return {r["key"]: Flag.from_row(r) for r in conn.execute(_SELECT).mappings()}


class FlagCache:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.redis = client
        self.channel = channel(settings)
        self.flags: dict[str, Flag] | None = None
        self.loaded_at = 0.0  # monotonic time of the last successful load
        self._failed_at = -RETRY_S
        self._generation = 0  # bumped by invalidate()
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()  # one load at a time: a slow older one must not
        # overwrite a newer one
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.ready = threading.Event()  # subscribed (tests wait for it)

    def snapshot(self) -> dict[str, Flag]:
        """The current flags (loaded on first use; {} while the database cannot be read)."""
        if self._pid != os.getpid():
            self._start()
        flags = self.flags
        if flags is None:
            if time.monotonic() - self._failed_at < RETRY_S:
                return {}
            flags = self.reload()
        return flags if flags is not None else {}

    def reload(self) -> dict[str, Flag] | None:
        with self._load_lock:
            generation = self._generation
            try:
                flags = load()
            except Exception:
                self._failed_at = time.monotonic()
                log.warning("feature flags: cannot load from PostgreSQL", exc_info=True)
                return self.flags
            if generation != self._generation:
                # invalidated while loading (a write committed here, or the table was
                # emptied): this copy may predate it, so the next read loads again
                return flags
            self.flags, self.loaded_at = flags, time.monotonic()
            return flags

    def invalidate(self) -> None:
        self._generation += 1
        self.flags = None
        self._failed_at = -RETRY_S

    # -- listener -----------------------------------------------------------------------
    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self.flags = None  # a forked child reloads on its own
            self._thread = threading.Thread(target=self._listen, name="flags", daemon=True)
            self._thread.start()

    def _listen(self) -> None:
        listen_with_backoff(
            self.redis,
            [self.channel],
            self._stop,
            self._on_poll,
            self.ready.clear,
            name="feature flags",
            backoff_s=BACKOFF_S,
        )

    def _on_poll(self, msg: dict[str, Any] | None) -> bool:
        if msg is not None and msg["type"] in ("message", "subscribe"):
            # a change, or a (re)subscription after which we may have missed one
            self.reload()
            if msg["type"] == "subscribe":
                self.ready.set()
                return True
        elif time.monotonic() - self.loaded_at > RESYNC_S:
            self.reload()
        return False

    def stop(self) -> None:
        self._stop.set()


_caches: PerRedis[FlagCache] = PerRedis(FlagCache)


def get_cache() -> FlagCache:
    return _caches.get()


def current() -> FlagCache | None:
    return _caches.current()
