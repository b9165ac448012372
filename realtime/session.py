"""One realtime connection's protocol, shared by the WebSocket and the SSE transport.

Why one class for both: ordering, recovery, token lifetime and revocation are the hard
part and must behave the same whichever transport carries the frames; a transport only
writes the frames this object queues (``take()``) and feeds it client messages.

Order and no duplicates (per connection):

1. the subscriber is registered in the hub (and the hub is subscribed) BEFORE the
   player's position or history is read, so nothing announced after that read is missed;
2. ``sync_connected`` {epoch, seq, heartbeat_s}, ``initial_state`` (the cached dashboard
   snapshot, read before the loop: an idle connection holds no database connection),
   then, when the client gave ``since`` and ``epoch``, the missed messages from the
   history — or ``resync_required`` and a fresh ``initial_state`` when that cannot be
   told exactly. ``initial_state.seq`` is the position the snapshot already reflects;
   backfilled messages (at or below it) still follow, so the client can show what
   happened while it was away;
3. live messages whose ``seq`` is not above the last one sent are dropped (already sent
   by the backfill); a gap (announcements lost while the hub reconnected) is filled from
   the history; a live message from another epoch (the history was lost) →
   ``resync_required`` + ``initial_state``, and the connection adopts the new epoch.

Token lifetime: the connection lives until its access token expires (then it closes
with 4401 ``TOKEN_EXPIRED``) unless the client sends ``{"type":"refresh","token":...}``
with a newer access token of the same player. A revoked token (logout, family revoked)
closes it with 4401 ``TOKEN_REVOKED``: at once on the hub's revocation notice, and on
every heartbeat from the denylist as a safety net.
"""

from __future__ import annotations

import json
import queue
import time
from datetime import datetime
from typing import Any

from ccweb import clock
from ccweb.auth import tokens
from ccweb.config import Settings
from ccweb.dashboard import service as dashboard_service
from ccweb.dashboard.cache import cached_view
from ccweb.db import autocommit
from ccweb.errors import DomainError
from ccweb.events import iso
from ccweb.metrics import REALTIME_PUSH_LATENCY, WS_RESYNCS
from ccweb.redis_client import get_redis
from ccweb.streak.service import utc_today
from realtime import history
from realtime.hub import CATCH_UP, CLIENT, GONE, MESSAGE, REVOKED, SHUTDOWN, Hub, Subscriber

UNAUTHORIZED = 4401  # WebSocket close code for every token problem (reason = error code)
GOING_AWAY = 1001  # the server is stopping: reconnect (elsewhere) with since/epoch
TRY_AGAIN = 1013  # the hub could not subscribe in time (Redis unavailable)
HUB_READY_TIMEOUT_S = 5.0


class Closed(Exception):
    """End the connection with this close code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Gone(Exception):
    """The client left (or its connection was shut down)."""


def authenticate(token: str | None) -> dict[str, Any]:
    """Access-token claims, or :class:`Closed` 4401 with the error code as reason."""
    if not token:
        raise Closed(UNAUTHORIZED, "UNAUTHORIZED")
    try:
        claims = tokens.decode(token, "access")
        tokens.check_not_revoked(claims)
    except DomainError as exc:
        raise Closed(UNAUTHORIZED, exc.code) from None
    return claims


class Session:
    def __init__(self, hub: Hub, claims: dict[str, Any], settings: Settings, kill: Any) -> None:
        self.hub = hub
        self.claims = claims
        self.user_id = int(claims["sub"])
        self.settings = settings
        self.redis = get_redis(settings)
        self.sub = Subscriber(self.user_id, settings.ws_queue_size, kill)
        self.epoch: str | None = None
        self.last = 0  # the last seq sent on this connection
        self.out: list[tuple[str, int | None]] = []  # frames to write: (json, seq|None)
        self.next_heartbeat = time.monotonic() + settings.ws_heartbeat_s

    # -- frames ------------------------------------------------------------------------
    def take(self) -> list[tuple[str, int | None]]:
        out, self.out = self.out, []
        return out

    def _control(self, kind: str, data: Any, seq: int | None = None) -> None:
        msg = {"type": kind, "user_id": self.user_id, "data": data, "timestamp": _now()}
        if seq is not None:
            msg["seq"] = seq
        self.out.append((json.dumps(msg, separators=(",", ":")), None))

    def _initial_state(self) -> None:
        """The dashboard snapshot (the same cached view as ``GET /api/dashboard``), with
        the seq it covers; the database connection is returned before this returns."""
        today = utc_today()

        def render() -> tuple[dict[str, Any], float | None]:
            with autocommit() as conn:
                return dashboard_service.dashboard(conn, self.user_id, today)

        body, _ = cached_view(self.user_id, "dashboard", today.isoformat(), render)
        head = f'{{"type":"initial_state","user_id":{self.user_id},"data":'
        self.out.append((f'{head}{body},"timestamp":"{_now()}","seq":{self.last}}}', None))

    def _push(self, seq: int, text: str) -> None:
        self.out.append((text, seq))
        self.last = seq

    def _resync(self) -> None:
        """Start over from the current position: ``resync_required`` + snapshot."""
        WS_RESYNCS.inc()
        self.epoch, self.last = history.position(self.redis, self.user_id)
        self._control("resync_required", {"epoch": self.epoch, "seq": self.last})
        self._initial_state()

    # -- opening -----------------------------------------------------------------------
    def open(self, since: int | None, epoch: str | None) -> None:
        self.hub.subscribe(self.sub)
        if not self.hub.ready.wait(HUB_READY_TIMEOUT_S):
            raise Closed(TRY_AGAIN, "UNAVAILABLE")
        missed = None
        if since is not None:
            missed = history.read_since(self.redis, self.user_id, epoch, since)
        self.epoch, self.last = history.position(self.redis, self.user_id)
        hello = {"epoch": self.epoch, "seq": self.last, "heartbeat_s": self.settings.ws_heartbeat_s}
        self._control("sync_connected", hello)
        if since is not None and missed is None:
            self._resync()
            return
        self._initial_state()
        if missed is not None:
            self.last = since or 0
            for seq, text in missed[1]:
                self._push(seq, text)

    def close(self) -> None:
        """Unregister; safe on every exit path."""
        self.hub.unsubscribe(self.sub)

    # -- the loop ----------------------------------------------------------------------
    def step(self) -> bool:
        """Wait for one thing to do (a message, a client frame, a timer) and do it.
        Returns True when the heartbeat is due (the transport may write a keep-alive).
        Raises :class:`Closed` or :class:`Gone` to end the connection."""
        now = time.monotonic()
        expires_in = float(self.claims["exp"]) - clock.time()
        wait = max(0.0, min(self.next_heartbeat - now, expires_in))
        try:
            item = self.sub.queue.get(timeout=wait)
        except queue.Empty:
            item = None
        if self.sub.slow:
            raise Gone()
        if item is not None:
            self._handle(item)
        if float(self.claims["exp"]) <= clock.time():
            raise Closed(UNAUTHORIZED, "TOKEN_EXPIRED")
        if time.monotonic() >= self.next_heartbeat:
            self.next_heartbeat = time.monotonic() + self.settings.ws_heartbeat_s
            self._check_not_revoked()
            return True
        return False

    def _handle(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == MESSAGE:
            self._live(item[1], item[2], item[3])
        elif kind == CATCH_UP:
            self._catch_up()
        elif kind == REVOKED:
            if item[1] in (f"jti:{self.claims['jti']}", f"fam:{self.claims.get('fam')}"):
                raise Closed(UNAUTHORIZED, "TOKEN_REVOKED")
        elif kind == CLIENT:
            self._client(item[1])
        elif kind == GONE:
            raise Gone()
        elif kind == SHUTDOWN:
            raise Closed(GOING_AWAY, "SHUTTING_DOWN")

    def _live(self, epoch: str, seq: int, text: str) -> None:
        if self.epoch is None:
            self.epoch = epoch  # the player's first push created the stream
        elif epoch != self.epoch:
            self._resync()
            return
        if seq <= self.last:
            return  # already sent (backfill, or covered by the snapshot)
        if seq > self.last + 1:
            self._catch_up()  # announcements were lost: the history has them
            if seq <= self.last or self.epoch != epoch:
                return
        _observe_latency(text)
        self._push(seq, text)

    def _catch_up(self) -> None:
        epoch = self.epoch
        if epoch is None:  # the player's stream began after the opening: all of it is new
            epoch = history.position(self.redis, self.user_id)[0]
        missed = history.read_since(self.redis, self.user_id, epoch, self.last)
        if missed is None:
            self._resync()
            return
        self.epoch = missed[0]
        for seq, text in missed[1]:
            if seq > self.last:
                self._push(seq, text)

    def _client(self, raw: Any) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            return  # not ours to answer: ignore junk rather than drop the player
        if not isinstance(msg, dict):
            return
        if msg.get("type") == "refresh":
            claims = authenticate(msg.get("token"))
            if int(claims["sub"]) != self.user_id:
                raise Closed(UNAUTHORIZED, "UNAUTHORIZED")
            self.claims = claims
            self._control("token_refreshed", {"expires_at": claims["exp"]})
        elif msg.get("type") == "ping":
            self._control("pong", {})

    def _check_not_revoked(self) -> None:
        try:
            tokens.check_not_revoked(self.claims)
        except DomainError as exc:
            raise Closed(UNAUTHORIZED, exc.code) from None


def _now() -> str:
    return iso(clock.utcnow()) or ""


_TS = '"timestamp":"'


def _observe_latency(text: str) -> None:
    """Event time → now, read from the message text without parsing it (the envelope's
    timestamp is the last one in the message: ``data`` comes before it)."""
    at = text.rfind(_TS)
    if at < 0:
        return
    start = at + len(_TS)
    try:
        ts = datetime.fromisoformat(text[start : text.index('"', start)].replace("Z", "+00:00"))
    except ValueError:
        return
    REALTIME_PUSH_LATENCY.observe(max(0.0, time.time() - ts.timestamp()))
