"""A real realtime stack for the tests: ``python -m ccweb.server`` + ``python -m worker``
(every group and the relay) against this run's database and Redis, a real WebSocket client
(websocket-client) and a real SSE client (http.client, streaming).

Why real processes: the pushes travel request → commit → stream → worker ``realtime`` group
→ Redis pub/sub → the web process's hub → the socket; only the real server (gevent
pywsgi, flask-sock's upgrade) and the real worker show that this path works.
"""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import websocket

from tests.factories import create_user
from tests.processes import start_server, start_worker, stop

TIMEOUT = 10.0  # a push that has not arrived by then is not coming


@dataclass
class Stack:
    port: int
    server: Any
    worker: Any
    env: dict[str, str]

    def url(self, **query: Any) -> str:
        q = "&".join(f"{k}={v}" for k, v in query.items() if v is not None)
        return f"ws://127.0.0.1:{self.port}/api/realtime/sync" + (f"?{q}" if q else "")

    def call(
        self, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        headers = {"X-Idempotency-Key": uuid.uuid4().hex}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else None)
        finally:
            conn.close()

    def login(self, user: dict[str, Any]) -> str:
        status, body = self.call(
            "POST",
            "/api/auth/login",
            body={"site_id": user["site_id"], "password": user["password"]},
        )
        assert status == 200, body
        return str(body["access_token"])

    def spin(self, token: str) -> dict[str, Any]:
        status, body = self.call("POST", "/api/games/slot/spin", token, {"bet": 100})
        assert status == 200, body
        return dict(body)


@pytest.fixture
def start_stack(subprocess_env: dict[str, str]) -> Iterator[Callable[..., Stack]]:
    """``start_stack(processes=1, **env)`` → a running server + worker; stopped after."""
    procs: list[Any] = []

    def start(processes: int = 1, **env: str) -> Stack:
        full = {**subprocess_env, **env}
        worker = start_worker(full)
        procs.append(worker)
        server, port = start_server(full, processes=processes)
        procs.append(server)
        return Stack(port, server, worker, full)

    yield start
    for proc in reversed(procs):
        stop(proc)


@pytest.fixture
def stack(start_stack: Callable[..., Stack]) -> Stack:
    return start_stack()


@dataclass
class Player:
    user: dict[str, Any]
    token: str


@pytest.fixture
def player(stack: Stack) -> Player:
    user = create_user(gold=100_000)
    return Player(user, stack.login(user))


@dataclass
class Ws:
    """A WebSocket client that keeps every message it received, in order."""

    conn: websocket.WebSocket
    seen: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def connect(cls, url: str, **kw: Any) -> Ws:
        return cls(websocket.create_connection(url, timeout=TIMEOUT, **kw))

    def recv(self) -> dict[str, Any]:
        msg = json.loads(self.conn.recv())
        self.seen.append(msg)
        return dict(msg)

    def until(self, kind: str, pred: Callable[[dict[str, Any]], bool] = lambda m: True) -> Any:
        """Read until a message of ``kind`` matching ``pred``; returns it."""
        while True:
            msg = self.recv()
            if msg["type"] == kind and pred(msg):
                return msg

    def opening(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The first two messages: sync_connected and initial_state."""
        hello, state = self.recv(), self.recv()
        assert hello["type"] == "sync_connected", hello
        assert state["type"] == "initial_state", state
        return hello, state

    def pushes(self) -> list[dict[str, Any]]:
        return [m for m in self.seen if "seq" in m and m["type"] != "initial_state"]

    def close_status(self) -> tuple[int | None, str]:
        """Read until the server closes; (close code, reason)."""
        while True:
            op, frame = self.conn.recv_data_frame(control_frame=True)
            if op == websocket.ABNF.OPCODE_CLOSE:
                data = frame.data
                code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                return code, data[2:].decode()
            if op == websocket.ABNF.OPCODE_TEXT:
                self.seen.append(json.loads(frame.data))

    def close(self) -> None:
        self.conn.close()


class Sse:
    """A streaming SSE client on http.client: events as (id, message)."""

    def __init__(self, port: int, path: str, headers: dict[str, str] | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        self.conn.request("GET", path, headers=headers or {})
        self.resp = self.conn.getresponse()

    def event(self) -> tuple[str | None, dict[str, Any]]:
        """The next event (comment lines — heartbeats — are skipped)."""
        ident: str | None = None
        data: list[str] = []
        while True:
            line = self.resp.fp.readline().decode()
            if line == "":
                raise EOFError("stream ended")
            line = line.rstrip("\n")
            if line == "":
                if data:
                    return ident, json.loads("\n".join(data))
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            if name == "id":
                ident = value
            elif name == "data":
                data.append(value)

    def until(self, kind: str) -> tuple[str | None, dict[str, Any]]:
        while True:
            ident, msg = self.event()
            if msg["type"] == kind:
                return ident, msg

    def close(self) -> None:
        self.conn.close()
