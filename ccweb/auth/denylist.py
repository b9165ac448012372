"""Revoked access tokens (by jti) and token families, answered from process memory.

Checking a Redis key on every authenticated request costs a round trip (a third of the
request on this hardware, see PERFORMANCE.md). Revocations are rare, so each process
keeps the whole set in memory and stays in sync through Redis:

* the set of record is a sorted set ``<prefix>:deny:z`` (member ``jti:<id>`` or
  ``fam:<id>``, score = when the entry stops mattering: the longest an affected access
  token can still be valid);
* every revocation is also PUBLISHed on ``<prefix>:deny:events``;
* one listener thread (a greenlet under gevent) per process subscribes, then loads the
  sorted set, then applies messages; it reloads every ``RELOAD_S`` as a safety net.

Until the listener has subscribed and loaded — at start, or after losing Redis — checks
go to Redis directly, so a revocation is never missed, only answered more slowly.

Scores are moments of :mod:`ccweb.clock` (the clock that judges token expiry), so an
entry stops mattering exactly when the tokens it covers would have expired.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis

from ccweb import clock
from ccweb.config import Settings
from ccweb.redis_client import PerRedis

log = logging.getLogger(__name__)
RELOAD_S = 60.0


class Denylist:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.redis = client
        self.zkey = f"{settings.redis_prefix}:deny:z"
        self.channel = f"{settings.redis_prefix}:deny:events"
        self._entries: dict[str, float] = {}
        self._healthy = threading.Event()
        self._started = False
        self._lock = threading.Lock()
        self._stop = threading.Event()

    # -- writes ------------------------------------------------------------------------
    def add(self, kind: str, ident: str, until: float) -> None:
        """Revoke ``kind`` (jti|fam) ``ident`` until the epoch time ``until``."""
        member = f"{kind}:{ident}"
        self._entries[member] = until
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(self.zkey, {member: until})
        pipe.zremrangebyscore(self.zkey, "-inf", clock.time())
        pipe.publish(self.channel, f"{member} {until}")
        pipe.execute()

    # -- reads -------------------------------------------------------------------------
    def is_revoked(self, jti: str, family: str | None) -> bool:
        self._ensure_started()
        members = [f"jti:{jti}"] + ([f"fam:{family}"] if family else [])
        now = clock.time()
        if self._healthy.is_set():
            return any(self._entries.get(m, 0.0) > now for m in members)
        scores = self.redis.zmscore(self.zkey, members)
        return any(s is not None and s > now for s in scores)

    # -- listener ----------------------------------------------------------------------
    def _ensure_started(self) -> None:
        if self._started:
            return
        with self._lock:
            if not self._started:
                self._started = True
                threading.Thread(target=self._listen, name="denylist", daemon=True).start()

    def _reload(self) -> None:
        now = clock.time()
        rows: Any = self.redis.zrangebyscore(self.zkey, now, "+inf", withscores=True)
        self._entries = {str(m): float(s) for m, s in rows}

    def _listen(self) -> None:
        while not self._stop.is_set():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                # wait for the subscription to be confirmed before loading the set, so
                # nothing revoked in between can slip past both
                while pubsub.get_message(timeout=1.0) is None and not pubsub.subscribed:
                    pass
                self._reload()
                self._healthy.set()
                last_reload = time.monotonic()
                while not self._stop.is_set():
                    msg = pubsub.get_message(timeout=1.0)
                    if msg and msg.get("type") == "message":
                        member, _, until = str(msg["data"]).partition(" ")
                        self._entries[member] = float(until)
                    if time.monotonic() - last_reload > RELOAD_S:
                        self._reload()
                        last_reload = time.monotonic()
            except Exception:
                log.warning("denylist listener lost Redis; checking Redis directly", exc_info=True)
            finally:
                self._healthy.clear()
                try:
                    pubsub.close()
                except Exception:  # closing a broken connection may fail too
                    log.debug("pubsub close failed", exc_info=True)
            self._stop.wait(0.5)

    def stop(self) -> None:
        self._stop.set()


_denylists: PerRedis[Denylist] = PerRedis(Denylist)


def denylist() -> Denylist:
    """The process denylist (one per Redis URL + prefix)."""
    return _denylists.get()
