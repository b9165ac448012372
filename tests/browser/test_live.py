"""The client's realtime connection in Chromium against the real server and worker:
resuming after a drop with ``since`` + ``epoch`` (the pushes missed while away are
backfilled, none repeated, no resync), the SSE fallback when WebSockets cannot connect,
and the token refresh that keeps an open socket alive past its first token's expiry.
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import redis
from playwright.sync_api import Page, expect

from realtime import history
from tests.browser import ui
from tests.browser.conftest import Player, Stack

tid = ui.tid


def _claim_streak(stack: Stack, player: Player) -> None:
    r = stack.api("POST", "/api/streak/claim", token=player.access_token)
    assert r.status_code == 200, r.text


def test_reconnect_resumes_with_since_and_epoch(page: Page, stack: Stack, player: Player) -> None:
    _claim_streak(stack, player)  # the player's push stream (and its epoch) exists
    gate = ui.WsGate(page)
    page.goto("/play")
    ui.login(page, player)
    ui.wait_live(page)
    ui.expect_balance(page, 2000)
    hello = gate.wait(page, lambda m: m.get("type") == "sync_connected", what="sync_connected")
    epoch, first_seq = hello["data"]["epoch"], hello["data"]["seq"]
    assert epoch and first_seq >= 2

    # the server goes away: the socket closes (1001) and the client starts retrying
    stack.stop_server()
    try:
        expect(tid(page, "live-status")).not_to_have_attribute("data-state", "live")
        # meanwhile gold is granted: the worker derives the push and keeps it in the history
        after = stack.grant_gold_direct(player.user_id, 777, "while you were away")
        assert after == 2777
        # nothing can reach the page now: the header still shows the old balance
        page.wait_for_timeout(300)
        assert ui.balance(page) == 2000
    finally:
        stack.start_server()

    ui.wait_live(page, timeout_ms=20_000)
    ui.expect_balance(page, 2777)
    assert len(gate.urls) >= 2
    resumed = parse_qs(urlsplit(gate.urls[-1]).query)
    assert resumed["since"] == [str(first_seq)], gate.urls
    assert resumed["epoch"] == [epoch], gate.urls
    last = len(gate.urls) - 1
    # the missed push came as backfill on the new socket, in order, without a resync
    assert not gate.messages("resync_required", socket=last)
    backfill = [
        m for m in gate.messages(socket=last) if "seq" in m and m["type"] != "initial_state"
    ]
    assert backfill and backfill[0]["seq"] == first_seq + 1
    assert any(m["type"] == "profile_update" and m["data"].get("delta") == 777 for m in backfill)
    expect(tid(page, "toast").filter(has_text="adjusted by +777")).to_be_visible()

    # live pushes flow on the resumed socket
    stack.grant_gold(player.user_id, 23)
    ui.expect_balance(page, 2800)
    assert len(gate.urls) == last + 1  # no further reconnect was needed


def test_resync_when_the_history_is_gone(page: Page, stack: Stack, player: Player) -> None:
    """The player's history lost while the page was away (Redis flushed, epoch changed):
    the server answers resync_required + a fresh snapshot, and the page shows it."""
    _claim_streak(stack, player)
    gate = ui.WsGate(page)
    page.goto("/play")
    ui.login(page, player)
    ui.wait_live(page)
    stack.stop_server()
    try:
        keys = (history.epoch_key, history.seq_key, history.history_key)
        uid, settings = player.user_id, stack.settings
        redis.Redis.from_url(settings.redis_url).delete(*(k(uid, settings) for k in keys))
        stack.grant_gold_direct(player.user_id, 5000, "after the history was lost")
    finally:
        stack.start_server()
    ui.wait_live(page, timeout_ms=20_000)
    ui.expect_balance(page, 7000)
    last = len(gate.urls) - 1
    assert "since=" in gate.urls[last]
    assert gate.messages("resync_required", socket=last), gate.messages(socket=last)


def test_sse_fallback_when_websocket_cannot_connect(
    page: Page, stack: Stack, player: Player
) -> None:
    gate = ui.WsGate(page, block=True)  # every WebSocket is refused
    streams: list[dict[str, str]] = []
    page.on(
        "request",
        lambda r: streams.append(r.headers) if "/api/realtime/stream" in r.url else None,
    )
    page.goto("/play")
    ui.login(page, player)
    ui.wait_live(page, timeout_ms=15_000)
    expect(tid(page, "live-status")).to_have_attribute("data-transport", "sse")
    assert len(gate.urls) >= 2  # it tried the WebSocket first
    assert streams and streams[0].get("authorization", "").startswith("Bearer ")

    stack.grant_gold(player.user_id, 250)
    ui.expect_balance(page, 1250)

    # the stream drops (server restart): it resumes from the last seq it saw
    stack.restart_server()
    ui.wait_live(page, timeout_ms=20_000)
    deadline = time.monotonic() + 10
    while len(streams) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert len(streams) >= 2, streams
    assert streams[-1].get("last-event-id", "").isdigit(), streams[-1]
    stack.grant_gold(player.user_id, 50)
    ui.expect_balance(page, 1300)


def test_token_refresh_keeps_the_socket(page: Page, stack: Stack, player: Player) -> None:
    """The page refreshes its access token before it expires and hands the new one to
    the open socket ({"type":"refresh"}); the server confirms and keeps the socket."""
    gate = ui.WsGate(page)
    page.clock.install()
    page.goto("/play")
    ui.login(page, player)
    ui.wait_live(page)
    first = page.evaluate("JSON.parse(sessionStorage.getItem('cc.session')).access_token")
    with page.expect_response(re.compile(r"/api/auth/refresh$")) as refreshed:
        page.clock.fast_forward("13:30")  # past 80 % of the 15-minute token
    assert refreshed.value.status == 200
    sent = gate.wait_sent(page, lambda m: m.get("type") == "refresh", what="refresh frame")
    second = page.evaluate("JSON.parse(sessionStorage.getItem('cc.session')).access_token")
    assert second != first and sent["token"] == second
    gate.wait(page, lambda m: m.get("type") == "token_refreshed", what="token_refreshed")
    assert len(gate.urls) == 1  # the same socket
    stack.grant_gold(player.user_id, 99)
    ui.expect_balance(page, 1099)


def test_reload_with_an_expired_token_refreshes_first(signed_in_page: Page, stack: Stack) -> None:
    """A page reopened after its access token expired renews it before opening the
    socket (instead of a refused socket, then a refresh, then a second socket)."""
    page = signed_in_page
    page.evaluate(
        """() => {
        const s = JSON.parse(sessionStorage.getItem('cc.session'));
        s.expires_at = Date.now() - 1000;
        sessionStorage.setItem('cc.session', JSON.stringify(s));
    }"""
    )
    old = page.evaluate("JSON.parse(sessionStorage.getItem('cc.session')).access_token")
    recorder = ui.WsRecorder(page)
    with page.expect_response(re.compile(r"/api/auth/refresh$")) as refreshed:
        page.reload()
    assert refreshed.value.status == 200
    ui.wait_live(page)
    new = page.evaluate("JSON.parse(sessionStorage.getItem('cc.session')).access_token")
    assert new != old
    assert len(recorder.sockets) == 1 and new in recorder.sockets[0]["url"]
    stack.grant_gold(page.player.user_id, 5)  # type: ignore[attr-defined]
    ui.expect_balance(page, 1005)
