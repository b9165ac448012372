"""What browser tests do to the player client (``/play``), in the client's own terms
(its ``data-testid`` names), so a renamed control breaks one helper, not every test."""

from __future__ import annotations

import contextlib
import json
import re
import time
from typing import Any

from playwright.sync_api import Page, expect


def tid(page: Page, testid: str) -> Any:
    return page.get_by_test_id(testid)


def login(page: Page, player: Any) -> None:
    """Log in through the form (the page shows the auth screen)."""
    tid(page, "auth-mode-login").click()
    tid(page, "login-site-id").fill(player.site_id)
    tid(page, "login-password").fill(player.password)
    tid(page, "login-submit").click()
    expect(tid(page, "balance")).to_have_text(re.compile(r"\d"))


def signup(page: Page, site_id: str, nickname: str, password: str, invite_code: str) -> None:
    """Sign up through the form (the page shows the auth screen)."""
    tid(page, "auth-mode-signup").click()
    tid(page, "signup-site-id").fill(site_id)
    tid(page, "signup-nickname").fill(nickname)
    tid(page, "signup-password").fill(password)
    tid(page, "signup-invite").fill(invite_code)
    tid(page, "signup-submit").click()


def wait_live(page: Page, timeout_ms: int = 10_000) -> None:
    """Until the realtime connection is open and its snapshot applied."""
    expect(tid(page, "live-status")).to_have_attribute("data-state", "live", timeout=timeout_ms)


def balance(page: Page) -> int:
    """The balance shown in the header, as a number (``data-value`` holds it unformatted)."""
    return int(tid(page, "balance").get_attribute("data-value") or "0")


def expect_balance(page: Page, value: int, timeout_ms: int = 10_000) -> None:
    expect(tid(page, "balance")).to_have_attribute("data-value", str(value), timeout=timeout_ms)


def nav(page: Page, view: str) -> None:
    """Open a view with its navigation button (dashboard, games, shop, fairness, ...)."""
    tid(page, f"nav-{view}").click()


class WsRecorder:
    """Every realtime WebSocket the page opens, with its frames in arrival order.

    ``sockets``: list of ``{"url", "frames": [message dict, ...], "closed": bool}``;
    ``messages(type)`` all received messages of a type (any socket)."""

    def __init__(self, page: Page) -> None:
        self.sockets: list[dict[str, Any]] = []
        page.on("websocket", self._opened)

    def _opened(self, ws: Any) -> None:
        if "/api/realtime/sync" not in ws.url:
            return
        entry: dict[str, Any] = {"url": ws.url, "frames": [], "sent": [], "closed": False}
        self.sockets.append(entry)

        def received(payload: Any) -> None:
            try:
                entry["frames"].append(json.loads(payload))
            except (TypeError, ValueError):
                pass

        def sent(payload: Any) -> None:
            try:
                entry["sent"].append(json.loads(payload))
            except (TypeError, ValueError):
                pass

        ws.on("framereceived", received)
        ws.on("framesent", sent)
        ws.on("close", lambda _ws: entry.update(closed=True))

    def messages(self, kind: str | None = None) -> list[dict[str, Any]]:
        out = [m for s in self.sockets for m in s["frames"]]
        return [m for m in out if kind is None or m.get("type") == kind]

    def wait(self, page: Page, predicate: Any, timeout_s: float = 10.0, what: str = "") -> Any:
        """Pump Playwright's events until a received message satisfies ``predicate``."""
        deadline = time.monotonic() + timeout_s
        while True:
            for m in self.messages():
                if predicate(m):
                    return m
            if time.monotonic() > deadline:
                raise AssertionError(f"no WebSocket message {what}: {self.messages()[-5:]}")
            page.wait_for_timeout(25)


class WsGate:
    """The page's realtime WebSocket through Playwright's WebSocket routing: frames from
    the server reach the page only while the gate is open. ``hold()`` queues them (the
    page keeps its socket and sees nothing), ``release()`` delivers the queue in order.
    ``frames`` lists every server frame as ``(message dict, delivered_at | None)``.
    ``block=True`` refuses every connection instead (the server is never reached)."""

    def __init__(self, page: Page, block: bool = False) -> None:
        self.holding = False
        self.block = block
        self.queue: list[tuple[Any, str]] = []
        self.frames: list[dict[str, Any]] = []
        self.urls: list[str] = []
        self.sent: list[dict[str, Any]] = []
        page.route_web_socket(re.compile(r".*/api/realtime/sync.*"), self._route)

    def _route(self, ws: Any) -> None:
        self.urls.append(ws.url)
        if self.block:
            ws.close(code=1011, reason="blocked by the test")
            return
        server = ws.connect_to_server()

        def to_server(message: Any) -> None:
            with contextlib.suppress(TypeError, ValueError):
                self.sent.append(json.loads(message))
            server.send(message)

        def to_page(message: Any) -> None:
            try:
                msg = json.loads(message)
            except (TypeError, ValueError):
                msg = {"raw": message}
            msg["_socket"] = len(self.urls) - 1
            self.frames.append(msg)
            if self.holding:
                self.queue.append((ws, message))
            else:
                ws.send(message)

        ws.on_message(to_server)
        server.on_message(to_page)

    def hold(self) -> None:
        self.holding = True

    def release(self) -> None:
        self.holding = False
        queued, self.queue = self.queue, []
        for ws, message in queued:
            with contextlib.suppress(Exception):  # that socket may have closed meanwhile
                ws.send(message)

    def messages(self, kind: str | None = None, socket: int | None = None) -> list[dict[str, Any]]:
        return [
            m
            for m in self.frames
            if (kind is None or m.get("type") == kind)
            and (socket is None or m["_socket"] == socket)
        ]

    def wait(self, page: Page, predicate: Any, timeout_s: float = 10.0, what: str = "") -> Any:
        """Pump Playwright's events until a server frame satisfies ``predicate``."""
        deadline = time.monotonic() + timeout_s
        while True:
            for m in self.frames:
                if predicate(m):
                    return m
            if time.monotonic() > deadline:
                raise AssertionError(f"no WebSocket frame {what}: {self.frames[-5:]}")
            page.wait_for_timeout(25)

    def wait_sent(self, page: Page, predicate: Any, timeout_s: float = 10.0, what: str = "") -> Any:
        """Pump Playwright's events until a frame the page sent satisfies ``predicate``."""
        deadline = time.monotonic() + timeout_s
        while True:
            for m in self.sent:
                if predicate(m):
                    return m
            if time.monotonic() > deadline:
                raise AssertionError(f"the page sent no frame {what}: {self.sent[-5:]}")
            page.wait_for_timeout(25)
