"""The per-process realtime hub: ONE Redis listener that fans announcements out to the
sockets of this process (CTFd's ``utils/events`` pattern; ENGINEERING.md "Realtime hub").

Why one listener and not a subscription per socket: a Redis connection per socket would
cost a connection and a file descriptor per player on Redis and here, and every
announcement would be parsed once per socket. Here each announcement is read once, split
on its three leading fields (``"<user_id> <epoch> <seq> <json>"``, see
:mod:`realtime.history`), and the JSON text is handed untouched to the local subscribers
of that player (``user_id`` → set of :class:`Subscriber`).

The listener also follows the denylist channel (``<prefix>:deny:events``, published by
:mod:`ccweb.auth.denylist` on logout and family revocation) and tells every local
subscriber, so a revoked token's socket closes at once, not at its next heartbeat.

Each subscriber has a bounded queue (``CC_WS_QUEUE_SIZE``). A socket that cannot keep up
(its queue is full) is marked slow and its connection is shut down — memory stays
bounded instead of growing with the backlog — and ``cc_ws_dropped_slow_total`` counts it.

The listener starts with the first subscriber, is restarted if it ever dies, and
reconnects with a doubling backoff when Redis goes away. Announcements published while it
was disconnected are lost to pub/sub, so after every reconnect each subscriber is told to
catch up from the player's history (``history.read_since``), which fills the gap or asks
the client to resync.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from ccweb.config import Settings
from ccweb.metrics import WS_DROPPED_SLOW
from ccweb.redis_client import PerRedis
from ccweb.redis_listen import listen_with_backoff
from realtime import history

log = logging.getLogger(__name__)

# Queue items (tuples, first field the kind):
MESSAGE = "msg"  # ("msg", epoch, seq, json_text): an announced push
CATCH_UP = "catch_up"  # ("catch_up",): the listener reconnected, announcements may be lost
REVOKED = "revoked"  # ("revoked", "jti:<id>" | "fam:<id>"): a token was revoked
CLIENT = "client"  # ("client", text): a message from the client (WebSocket)
GONE = "gone"  # ("gone",): the client left
SHUTDOWN = "shutdown"  # ("shutdown",): the server is stopping

BACKOFF_S = (0.1, 5.0)  # first and longest wait before reconnecting to Redis


class Subscriber:
    """One socket's mailbox. ``kill`` shuts its connection down (used when it is slow: a
    handler blocked on a full send buffer would otherwise never come back)."""

    __slots__ = ("kill", "queue", "slow", "user_id")

    def __init__(self, user_id: int, maxsize: int, kill: Callable[[], None]) -> None:
        self.user_id = user_id
        self.queue: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize)
        self.slow = False
        self.kill = kill

    def offer(self, item: tuple[Any, ...]) -> bool:
        """Queue ``item`` without waiting; a full queue drops the subscriber (once)."""
        if self.slow:
            return False
        try:
            self.queue.put_nowait(item)
            return True
        except queue.Full:
            self.slow = True
            WS_DROPPED_SLOW.inc()
            log.warning("realtime: dropping a slow socket of user %d", self.user_id)
            with contextlib.suppress(OSError):
                self.kill()
            return False


class Hub:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.redis = client
        self.channels = history.all_channels(settings)
        self.deny_channel = f"{settings.redis_prefix}:deny:events"
        self.subscribers: dict[int, set[Subscriber]] = {}
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._confirmed = 0  # subscription confirmations seen, over every (re)connection
        self.ready = threading.Event()  # subscribed (tests and the bench wait for it)

    # -- subscribers -------------------------------------------------------------------
    def subscribe(self, sub: Subscriber) -> None:
        self.subscribers.setdefault(sub.user_id, set()).add(sub)
        self.ensure_running()

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self.subscribers.get(sub.user_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                self.subscribers.pop(sub.user_id, None)

    def count(self) -> int:
        return sum(len(s) for s in self.subscribers.values())

    def close_all(self) -> None:
        """Ask every local connection to close with 1001 (going away), e.g. on SIGTERM
        before the server drains: clients reconnect (with ``since``) to another process at
        once instead of waiting for the drain to cut them."""
        self.broadcast((SHUTDOWN,))

    def broadcast(self, item: tuple[Any, ...]) -> None:
        for subs in list(self.subscribers.values()):
            for sub in list(subs):
                sub.offer(item)

    # -- routing -----------------------------------------------------------------------
    def route(self, channel: str, data: str) -> None:
        """One pub/sub message: a push announcement, or a revocation."""
        if channel == self.deny_channel:
            member = data.partition(" ")[0]
            self.broadcast((REVOKED, member))
            return
        uid, epoch, seq, text = data.split(" ", 3)
        subs = self.subscribers.get(int(uid))
        if subs:
            item = (MESSAGE, epoch, int(seq), text)
            for sub in list(subs):
                sub.offer(item)

    # -- listener ----------------------------------------------------------------------
    def ensure_running(self) -> None:
        """Start the listener, or start it again if it died."""
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._listen, name="rt-hub", daemon=True)
                self._thread.start()

    def _listen(self) -> None:
        listen_with_backoff(
            self.redis,
            [*self.channels, self.deny_channel],
            self._stop,
            self._on_poll,
            self._on_lost,
            name="realtime hub",
            backoff_s=BACKOFF_S,
        )

    def _on_poll(self, msg: dict[str, Any] | None) -> bool:
        if msg is None:
            return False
        if msg["type"] == "message":
            try:
                self.route(_text(msg["channel"]), _text(msg["data"]))
            except Exception:  # one bad announcement must not stop the hub
                log.exception("realtime: cannot route %r", msg["data"][:200])
        elif msg["type"] == "subscribe":
            # redis-py may also reconnect and resubscribe by itself: every complete set
            # of confirmations after the first is a reconnect
            wanted = len(self.channels) + 1
            self._confirmed += 1
            if self._confirmed % wanted == 0:
                if self._confirmed > wanted:
                    self.broadcast((CATCH_UP,))
                self.ready.set()
                return True
        return False

    def _on_lost(self) -> None:
        self.ready.clear()
        self._confirmed += -self._confirmed % (len(self.channels) + 1)  # a partial set never counts

    def stop(self) -> None:
        self._stop.set()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_hubs: PerRedis[Hub] = PerRedis(Hub)


def get_hub() -> Hub:
    """The process hub (one per Redis URL + prefix)."""
    return _hubs.get()


def wait_ready(hub: Hub, timeout: float) -> bool:
    """Wait (up to ``timeout`` s) until the listener is subscribed."""
    deadline = time.monotonic() + timeout
    while not hub.ready.wait(0.05):
        if time.monotonic() > deadline:
            return False
    return True


def close_local_sockets() -> None:
    """Close this process's sockets with 1001 (shutdown), if a hub was ever started: a
    clean close tells clients to reconnect (to another process) instead of reading a
    connection cut mid-frame."""
    hub = _hubs.current()
    if hub is not None:
        hub.close_all()
