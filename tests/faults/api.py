"""A small HTTP client of the real server for fault tests: one fresh connection per call
(so a killed or paused server is met by the next call, not by a stale kept-alive socket),
timed from send to the end of the body, with a generous timeout so a regression that
hangs fails instead of hanging the run."""

from __future__ import annotations

import http.client
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.faults.stores import FaultStack

HTTP_TIMEOUT_S = 20.0


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]
    seconds: float


class Api:
    def __init__(self, port: int, token: str = "") -> None:
        self.port = port
        self.token = token

    def on(self, port: int) -> Api:
        """The same player talking to another server process."""
        return Api(port, self.token)

    def call(
        self, method: str, path: str, body: dict | None = None, key: str | None = None
    ) -> Reply:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if key:
            headers["X-Idempotency-Key"] = key
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT_S)
        started = time.monotonic()
        try:
            conn.request(method, path, body=json.dumps(body) if body else None, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        seconds = time.monotonic() - started
        data = json.loads(raw) if raw else None
        return Reply(resp.status, data, {k.lower(): v for k, v in resp.getheaders()}, seconds)

    def signup(self, prefix: str = "p") -> dict[str, Any]:
        """A new player of its own (a module's tests share one database)."""
        site_id = f"{prefix}_{secrets.token_hex(4)}"
        reply = self.call(
            "POST",
            "/api/auth/signup",
            {
                "site_id": site_id,
                "nickname": site_id[-12:],
                "password": "pass-1234-x",
                "invite_code": "5858",
            },
        )
        assert reply.status == 201, reply
        self.token = reply.body["access_token"]
        return {"id": reply.body["user"]["id"], "site_id": site_id, "password": "pass-1234-x"}

    def login(self, site_id: str, password: str) -> None:
        reply = self.call("POST", "/api/auth/login", {"site_id": site_id, "password": password})
        assert reply.status == 200, reply
        self.token = reply.body["access_token"]

    def spin(self, key: str | None = None, bet: int = 10) -> Reply:
        return self.call("POST", "/api/games/slot/spin", {"bet": bet}, key=key)


def concurrently(calls: dict[str, Callable[[], Reply]]) -> dict[str, Reply]:
    """Run the calls at the same moment (threads); their replies by name."""
    replies: dict[str, Reply] = {}
    errors: list[BaseException] = []

    def run(name: str, fn: Callable[[], Reply]) -> None:
        try:
            replies[name] = fn()
        except BaseException as exc:  # reported below with the call's name
            errors.append(exc)

    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HTTP_TIMEOUT_S + 5)
    assert not errors, errors
    return replies


def ledger_matches_balance(stack: FaultStack, user_id: int) -> bool:
    balance = stack.scalar("SELECT gold_balance FROM users WHERE id = %s", (user_id,))
    ledger = stack.scalar(
        "SELECT COALESCE(sum(delta_gold), 0) FROM wallet_ledger WHERE user_id = %s", (user_id,)
    )
    return balance == ledger
