"""Browser end-to-end tests of the player client (``/play``, issue 15): Debian's Chromium
(``/usr/bin/chromium``, headless, driven by Playwright — no browser download) against a
real ``python -m ccweb.server`` and a real ``python -m worker`` (progress and pushes come
from the worker) on this run's database, seeded once for the package.

Fixtures (other browser test modules use these names):

``stack`` (package)
    :class:`Stack` — the running server + worker. ``stack.base_url``; ``stack.api(method,
    path, token=None, body=None, headers=None)`` → ``requests.Response``;
    ``stack.new_player(prefix)`` → :class:`Player` signed up through the API (1000 gold,
    not logged in in any page); ``stack.admin_token()``; ``stack.grant_gold(user_id,
    delta)`` (admin API, outside any page); ``stack.grant_gold_direct(user_id, delta)``
    (the same change committed by the test process itself: works while the server is
    down); ``stack.create_event(requirements, reward_items, title=None)`` → event dict
    (admin API, running now); ``stack.restart_server()``, ``stack.stop_server()`` +
    ``stack.start_server()`` (same port: open pages reconnect).
``browser`` (package)
    Playwright ``Browser``: ``/usr/bin/chromium`` headless.
``page`` (function)
    a desktop page (1280x800) whose ``goto("/play")`` is relative to ``stack.base_url``.
    An uncaught script error in the page fails the test (``page_errors``).
``phone_page`` (function)
    the same at phone size (375x740, touch, mobile).
``player`` (function)
    a fresh :class:`Player` (API signup).
``signed_in_page`` (function)
    ``page`` at ``/play`` logged in through the form as ``player``: the balance is shown
    and ``live-status`` says the socket is live. ``signed_in_page.player`` is the player.
``shoot`` (function)
    ``shoot(page, name, full_page=False)`` saves ``tests/browser/artifacts/<name>.png``
    (gitignored), scrolled to the top.

Helpers in :mod:`tests.browser.ui`: ``login(page, player)``, ``signup(page, ...)``,
``wait_live(page)``, ``balance(page)``, ``expect_balance(page, n)``, ``nav(page, view)``,
``WsRecorder`` (the page's realtime frames), ``WsGate`` (route the realtime socket: hold
and release the server's frames, or refuse the connection).

The root ``clean_state`` (truncate every table before each test) is replaced here by a
no-op: the server, its caches and the worker live for the whole package, so the package
empties the stores once before starting them, and every test makes its own player.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from sqlalchemy import text

from ccweb.config import Settings, set_settings
from tests.conftest import process_environment, reset_process_caches
from tests.processes import free_port, log_text, port_open, spawn, stop, wait_for
from tests.processes import worker_cmd as _worker_cmd

CHROMIUM = os.environ.get("CC_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
INVITE_CODE = "5858"  # ccweb.seed.INVITE_CODE
PASSWORD = "browser-pass-1234"
UI_TIMEOUT_MS = 10_000
STOP_GRACE_S = 3.0  # SIGTERM, then SIGKILL: nothing of a test run needs a longer goodbye


@dataclass
class Player:
    site_id: str
    nickname: str
    password: str
    user_id: int
    access_token: str
    refresh_token: str


class Stack:
    """A real web server and worker on the run's seeded database."""

    def __init__(self, settings: Settings, env: dict[str, str]) -> None:
        self.settings = settings
        self.env = env
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()
        self.server: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self._admin: str | None = None

    # -- processes ---------------------------------------------------------------------
    def start(self) -> None:
        self.start_server()
        self.worker = spawn(_worker_cmd(), self.env)

    def start_server(self) -> None:
        """``python -m ccweb.server`` on this stack's port (kept across restarts, so a
        page's origin stays valid)."""
        env = {
            **self.env,
            "PORT": str(self.port),
            "CC_HOST": "127.0.0.1",
            "CC_ACCESS_LOG": "0",
            "CC_WEB_PROCESSES": "1",
        }
        self.server = spawn([sys.executable, "-m", "ccweb.server"], env)
        deadline = time.monotonic() + 30
        while not port_open(self.port):
            if self.server.poll() is not None or time.monotonic() > deadline:
                out = log_text(self.server)[-4000:]
                stop(self.server)
                raise AssertionError(f"server did not start:\n{out}")
            time.sleep(0.05)

    def stop_server(self, crash: bool = True) -> None:
        """Take the web process away. ``crash`` (default): SIGKILL, the pages' sockets
        just drop (a crash or a network cut; instant). Otherwise SIGTERM: sockets close
        with 1001 GOING_AWAY, and kept-alive connections hold the exit up to 5 s."""
        assert self.server is not None
        if crash:
            self.server.kill()
            self.server.wait(10)
        else:
            stop(self.server)

    def restart_server(self) -> None:
        self.stop_server()
        self.start_server()

    def stop(self) -> None:
        self.http.close()  # no kept-alive connection holds the server's drain
        for proc in (self.worker, self.server):
            if proc is not None and proc.poll() is None:
                proc.terminate()  # both at once: their graceful exits overlap
        for proc in (self.worker, self.server):
            if proc is not None:
                stop(proc, timeout=STOP_GRACE_S)

    def logs(self) -> str:
        parts = []
        for name, proc in (("server", self.server), ("worker", self.worker)):
            if proc is not None:
                parts.append(f"--- {name}\n{log_text(proc)[-3000:]}")
        return "\n".join(parts)

    # -- API ---------------------------------------------------------------------------
    def api(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.base_url + path, json=body, headers=h, timeout=10)

    def new_player(self, prefix: str = "p") -> Player:
        tag = secrets.token_hex(4)
        site_id, nickname = f"{prefix}_{tag}", f"{prefix[:8]}{tag}"
        r = self.api(
            "POST",
            "/api/auth/signup",
            body={
                "site_id": site_id,
                "nickname": nickname,
                "password": PASSWORD,
                "invite_code": INVITE_CODE,
            },
        )
        assert r.status_code == 201, r.text
        data = r.json()
        return Player(
            site_id,
            nickname,
            PASSWORD,
            int(data["user"]["id"]),
            data["access_token"],
            data["refresh_token"],
        )

    def admin_token(self) -> str:
        if self._admin is None:
            r = self.api(
                "POST",
                "/api/auth/admin/login",
                body={"site_id": "admin", "password": self.settings.admin_password},
            )
            assert r.status_code == 200, r.text
            self._admin = r.json()["access_token"]
        return self._admin

    def grant_gold(self, user_id: int, delta: int, reason: str = "browser test") -> dict[str, Any]:
        r = self.api(
            "POST",
            f"/api/admin/users/{user_id}/gold",
            token=self.admin_token(),
            body={"delta": delta, "reason": reason},
            headers={"X-Idempotency-Key": secrets.token_hex(16)},
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def grant_gold_direct(self, user_id: int, delta: int, reason: str = "browser test") -> int:
        """An admin gold change made by this process, not through the web server (which
        may be down): committed with its outbox row, published like any other change, so
        the worker turns it into a push. Returns the new balance."""
        from ccweb.admin import service as admin_service
        from ccweb.db import in_transaction

        set_settings(self.settings)

        def run(session: Any) -> dict[str, Any]:
            admin_id = session.execute(
                text("SELECT id FROM users WHERE site_id = 'admin'")
            ).scalar_one()
            return admin_service.adjust_gold(
                session,
                admin_id=int(admin_id),
                user_id=user_id,
                delta=delta,
                reason=reason,
                request_key=None,
            )

        return int(in_transaction(run)["gold_balance"])

    def create_event(
        self,
        requirements: list[dict[str, Any]],
        reward_items: list[dict[str, Any]],
        title: str | None = None,
    ) -> dict[str, Any]:
        """An event running from a minute ago for a day (admin API)."""
        now = datetime.now(UTC).replace(microsecond=0)
        r = self.api(
            "POST",
            "/api/admin/events",
            token=self.admin_token(),
            body={
                "title": title or f"Browser sprint {secrets.token_hex(3)}",
                "type": "limited",
                "starts_at": (now - timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),
                "ends_at": (now + timedelta(days=1)).isoformat().replace("+00:00", "Z"),
                "requirements": requirements,
                "reward_items": reward_items,
            },
        )
        assert r.status_code == 201, r.text
        return dict(r.json())


def _empty_stores(settings: Settings) -> None:
    """The same emptying as the root ``clean_state``, once for the package."""
    from ccweb import db
    from ccweb.models import Base

    set_settings(settings)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine().begin() as conn:
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    redis.Redis.from_url(settings.redis_url).flushdb()
    reset_process_caches()


@pytest.fixture(autouse=True)
def clean_state() -> Iterator[None]:
    """Replaces the root fixture: the stores are emptied once per package (``stack``)."""
    yield


@pytest.fixture(scope="package")
def stack(settings: Settings) -> Iterator[Stack]:
    """Seeded database, then the web server and the worker; stopped after the package."""
    from ccweb.manage import seed

    _empty_stores(settings)
    seed()
    s = Stack(settings, process_environment(settings))
    s.start()
    try:
        wait_for(lambda: s.api("GET", "/ready").status_code == 200, 20, "server ready")
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="package")
def browser(stack: Stack) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: apt-get install chromium (scripts/test.sh does)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield b
        finally:
            b.close()


def _new_page(browser: Any, stack: Stack, request: Any, **options: Any) -> Iterator[Any]:
    context = browser.new_context(base_url=stack.base_url, **options)
    context.set_default_timeout(UI_TIMEOUT_MS)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.page_errors = errors
    try:
        yield pg
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            with contextlib.suppress(Exception):  # best effort: the page may be gone
                pg.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}.png"))
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def page(browser: Any, stack: Stack, request: Any) -> Iterator[Any]:
    yield from _new_page(browser, stack, request, viewport=DESKTOP)


@pytest.fixture
def phone_page(browser: Any, stack: Stack, request: Any) -> Iterator[Any]:
    yield from _new_page(
        browser,
        stack,
        request,
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )


@pytest.fixture
def player(stack: Stack) -> Player:
    return stack.new_player("web")


@pytest.fixture
def signed_in_page(page: Any, player: Player) -> Any:
    from tests.browser import ui

    page.goto("/play")
    ui.login(page, player)
    ui.wait_live(page)
    page.player = player
    return page


@pytest.fixture
def shoot() -> Any:
    def save(pg: Any, name: str, full_page: bool = False) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        pg.evaluate("window.scrollTo(0, 0)")
        pg.screenshot(path=str(path), full_page=full_page)
        return path

    return save


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Iterator[None]:
    """Keep each phase's report on the test item (the page fixture screenshots failures)."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
