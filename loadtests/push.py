"""The socket player: a player whose client also holds the realtime WebSocket, and the
WebSocket client that reports what it receives to Locust.

:class:`PushClient` is a Locust-reporting client in the manner of Locust's
``custom_xmlrpc_client`` example: it opens ``/api/realtime/sync?token=…`` (websocket-client,
cooperative under Locust's gevent), and fires ``environment.events.request`` with
``request_type="WS"`` so pushes sit in the same report as the HTTP requests:

* ``connect → initial_state`` — opening the socket until the dashboard snapshot arrived;
* ``push <type>`` — every pushed message, timed from its ``timestamp`` to its arrival
  here. The timestamp is the event's time, taken by the writing process as it builds the
  event, just before the statement that commits it (the same basis as the server's
  ``cc_realtime_push_latency_seconds`` and ``bench/realtime.py``); client and server
  share this machine's clock. So this is commit → WebSocket delivery — commit, fast-path
  publish, the worker's ``realtime`` group, Redis pub/sub, the web process's hub, the
  socket — plus the committing statement's own time and this client's delay: an upper
  bound;
* a write whose push never comes is a failure: every round this player plays must
  bring its ``stats_update`` and every purchase its ``purchase_update`` within
  ``PUSH_TIMEOUT_S`` (recorded as a failed ``push <type>`` with that time);
* ``event progress visible`` — gameplay → event progress visible: for each round played
  while the player takes part in an event with a ``plays`` requirement the round counts
  for, the time from the round's commit (its ``stats_update`` timestamp, or the HTTP
  answer when that push has not come yet) until an ``event_progress`` push shows the
  requirement's ``current`` at or past the count this round made. Exact per round,
  because a player's rounds are sequential and only rounds after joining count; not
  shown within ``PROGRESS_TIMEOUT_S`` → a failure.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import gevent
import websocket
from locust.env import Environment

from loadtests import targets as t
from loadtests.player import Player

PUSH_TIMEOUT_S = 5.0
PROGRESS_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 10.0
SWEEP_EVERY_S = 1.0
CONTROL = frozenset({"sync_connected", "initial_state", "token_refreshed", "resync_required"})


class PushMissing(Exception):
    """A committed write whose push did not arrive in time."""


class ConnectionLost(Exception):
    """The server closed the socket (or it broke) while the player was still playing."""


def event_time(stamp: str) -> float:
    """Epoch seconds of a SPEC timestamp (ISO-8601 UTC with ``Z``)."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class Expectations:
    """Pushes owed for writes this player made, keyed by ``(kind, id)``. A push may arrive
    before the HTTP answer that announces it, so what arrived early is remembered (the
    newest ``EARLY_MAX``) until it is expected."""

    EARLY_MAX = 512

    def __init__(self) -> None:
        self.pending: dict[tuple[str, Any], tuple[float, str]] = {}
        self.early: OrderedDict[tuple[str, Any], None] = OrderedDict()

    def expect(self, key: tuple[str, Any], name: str) -> None:
        if key in self.early:
            del self.early[key]
            return
        self.pending[key] = (time.monotonic() + PUSH_TIMEOUT_S, name)

    def arrived(self, key: tuple[str, Any]) -> None:
        if self.pending.pop(key, None) is None:
            self.early[key] = None
            while len(self.early) > self.EARLY_MAX:
                self.early.popitem(last=False)

    def overdue(self) -> list[str]:
        now = time.monotonic()
        late = [k for k, (deadline, _) in self.pending.items() if deadline < now]
        return [self.pending.pop(k)[1] for k in late]


@dataclass
class _Track:
    """One ``plays`` requirement of a joined event: how many rounds should count."""

    game_type: str | None
    target: int
    counted: int


@dataclass
class _Owed:
    round_id: int
    needs: dict[tuple[int, int], int]  # (event_id, requirement index) → current ≥ this
    answered_at: float
    deadline: float


class ProgressWatch:
    """Times gameplay → event progress visible (see the module docstring)."""

    def __init__(self) -> None:
        self.tracks: dict[tuple[int, int], _Track] = {}
        self.owed: list[_Owed] = []
        # the newest progress each requirement was shown at, and when: the worker can
        # push a round's progress before the round's HTTP answer reaches this client
        self.shown: dict[tuple[int, int], tuple[int, float]] = {}
        self.committed: OrderedDict[int, float] = OrderedDict()  # round id → event time

    def joined(self, event: dict[str, Any], participation: dict[str, Any]) -> None:
        progress = participation.get("progress") or []
        for i, req in enumerate(event.get("requirements") or []):
            if req.get("type") != "plays" or (event["id"], i) in self.tracks:
                continue
            current = progress[i].get("current", 0) if i < len(progress) else 0
            self.tracks[(event["id"], i)] = _Track(
                req.get("game_type"), int(req["target"]), current
            )

    def played(self, round_id: int, game_type: str, answered_at: float) -> list[float]:
        """Owe a progress push for this round; if one already showed it (it arrived
        before the answer), return its latency (ms) at once."""
        needs = {}
        for key, track in self.tracks.items():
            if track.game_type in (None, game_type) and track.counted < track.target:
                track.counted += 1
                needs[key] = track.counted
        if not needs:
            return []
        owed = _Owed(round_id, needs, answered_at, time.monotonic() + PROGRESS_TIMEOUT_S)
        early = [
            self.shown[k][1] for k, need in needs.items() if self.shown.get(k, (-1,))[0] >= need
        ]
        if early:
            return [(min(early) - self._start(owed)) * 1000]
        self.owed.append(owed)
        return []

    def _start(self, owed: _Owed) -> float:
        return min(self.committed.get(owed.round_id, owed.answered_at), owed.answered_at)

    def round_committed(self, round_id: int, at: float) -> None:
        self.committed[round_id] = at
        while len(self.committed) > 512:
            self.committed.popitem(last=False)

    def progress_pushed(self, items: Any, received_at: float) -> list[float]:
        """Latencies (ms) of the rounds this ``event_progress`` push shows."""
        shown: dict[tuple[int, int], int] = {}
        for item in items if isinstance(items, list) else []:
            for i, p in enumerate(item.get("progress") or []):
                shown[(item.get("event_id"), i)] = int(p.get("current", 0))
        for k, current in shown.items():
            if current > self.shown.get(k, (-1, 0.0))[0]:
                self.shown[k] = (current, received_at)
        done, still = [], []
        for owed in self.owed:
            if any(shown.get(k, -1) >= need for k, need in owed.needs.items()):
                done.append((received_at - self._start(owed)) * 1000)
            else:
                still.append(owed)
        self.owed = still
        return done

    def overdue(self) -> int:
        now = time.monotonic()
        late = [o for o in self.owed if o.deadline < now]
        self.owed = [o for o in self.owed if o.deadline >= now]
        return len(late)


class PushClient:
    """One realtime WebSocket of one player, reporting to Locust (module docstring)."""

    def __init__(self, environment: Environment, ws_url: str, token: Callable[[], str]) -> None:
        self.environment = environment
        self.ws_url = ws_url
        self.token = token
        self.ws: websocket.WebSocket | None = None
        self.expect = Expectations()
        self.progress = ProgressWatch()
        self.closing = False
        self._greenlets: list[gevent.Greenlet] = []

    def _fire(self, name: str, ms: float, length: int = 0, exc: Exception | None = None) -> None:
        self.environment.events.request.fire(
            request_type=t.WS,
            name=name,
            response_time=max(0.0, ms),
            response_length=length,
            exception=exc,
            context={},
        )

    def connect(self) -> bool:
        """Open the socket and wait for ``initial_state``; then read in the background."""
        started = time.perf_counter()
        try:
            ws = websocket.create_connection(
                f"{self.ws_url}?token={self.token()}", timeout=CONNECT_TIMEOUT_S
            )
            while True:
                text = ws.recv()
                if not text:
                    raise ConnectionLost("closed before initial_state")
                if json.loads(text).get("type") == "initial_state":
                    break
        except Exception as exc:
            self._fire(t.WS_CONNECT, (time.perf_counter() - started) * 1000, exc=exc)
            return False
        self._fire(t.WS_CONNECT, (time.perf_counter() - started) * 1000, len(text))
        ws.settimeout(None)
        self.ws = ws
        self._greenlets = [gevent.spawn(self._read, ws), gevent.spawn(self._sweep)]
        return True

    def refresh(self, token: str) -> None:
        """Extend the socket past its access token's expiry (SPEC: ``refresh`` message)."""
        if self.ws is not None:
            # a broken socket is reported by the reader
            with contextlib.suppress(Exception):
                self.ws.send(json.dumps({"type": "refresh", "token": token}))

    def close(self) -> None:
        self.closing = True
        for g in self._greenlets:
            g.kill(block=False)
        if self.ws is not None:
            with contextlib.suppress(Exception):
                self.ws.close()
        self.ws = None

    def _read(self, ws: websocket.WebSocket) -> None:
        try:
            while True:
                text = ws.recv()
                if not text:
                    raise ConnectionLost("closed by the server")
                self._on_message(text, time.time())
        except Exception as exc:
            if not self.closing:
                self._fire("connection lost", 0.0, exc=exc)
                self.ws = None

    def _on_message(self, text: str | bytes, received_at: float) -> None:
        msg = json.loads(text)
        kind = msg.get("type")
        if kind in CONTROL or not kind:
            return
        stamp = msg.get("timestamp")
        if isinstance(stamp, str):
            self._fire(t.PUSH_PREFIX + kind, (received_at - event_time(stamp)) * 1000, len(text))
        data = msg.get("data") or {}
        if kind == "stats_update" and "round_id" in data:
            self.expect.arrived(("round", data["round_id"]))
            if isinstance(stamp, str):
                self.progress.round_committed(data["round_id"], event_time(stamp))
        elif kind == "purchase_update" and "tx_id" in data:
            self.expect.arrived(("tx", data["tx_id"]))
        elif kind == "event_progress" and "items" in data:
            for ms in self.progress.progress_pushed(data["items"], received_at):
                self._fire(t.PROGRESS_VISIBLE, ms, len(text))

    def _sweep(self) -> None:
        while True:
            gevent.sleep(SWEEP_EVERY_S)
            for name in self.expect.overdue():
                self._fire(name, PUSH_TIMEOUT_S * 1000, exc=PushMissing(f"no {name}"))
            for _ in range(self.progress.overdue()):
                self._fire(
                    t.PROGRESS_VISIBLE,
                    PROGRESS_TIMEOUT_S * 1000,
                    exc=PushMissing("no event_progress showing the round"),
                )


class SocketPlayer(Player):
    """A :class:`Player` whose client holds the realtime socket and measures its pushes;
    it joins an event with a ``plays`` requirement first, so its rounds show as event
    progress."""

    weight = 1

    def on_start(self) -> None:
        self.push: PushClient | None = None
        super().on_start()
        host = (self.host or "").replace("http://", "ws://").replace("https://", "wss://")
        self.push = PushClient(
            self.environment, host + "/api/realtime/sync", lambda: self.me.access
        )
        self.push.connect()
        if not self.me.events:
            self.events_list()
        for event in self.me.events.values():
            plays = any(r.get("type") == "plays" for r in event.get("requirements") or [])
            if (
                plays
                and event.get("participation") is None
                and self._tier_ok(event.get("tier_required"))
            ):
                self.join(event)
                break

    def on_stop(self) -> None:
        if self.push is not None:
            self.push.close()

    def _socket(self) -> PushClient | None:
        """The socket, reopened if the server dropped it."""
        if self.push is not None and self.push.ws is None and not self.push.closing:
            self.push.connect()
        return self.push

    def on_play(self, result: dict[str, Any], answered_at: float) -> None:
        push = self._socket()
        if push is not None and push.ws is not None and "round_id" in result:
            push.expect.expect(("round", result["round_id"]), t.PUSH_PREFIX + "stats_update")
            for ms in push.progress.played(
                result["round_id"], result.get("game_type", ""), answered_at
            ):
                push._fire(t.PROGRESS_VISIBLE, ms)

    def on_purchase(self, result: dict[str, Any]) -> None:
        push = self._socket()
        if push is not None and push.ws is not None and "tx_id" in result:
            push.expect.expect(("tx", result["tx_id"]), t.PUSH_PREFIX + "purchase_update")

    def on_participation(self, event: dict[str, Any], participation: dict[str, Any]) -> None:
        if self.push is not None:
            self.push.progress.joined(event, participation)

    def on_token(self, access_token: str) -> None:
        push = getattr(self, "push", None)
        if push is not None:
            push.refresh(access_token)
