"""The WebSocket endpoint against the real server and worker: the opening, pushes made
by the web path (spin, streak claim) and by the worker (event progress), ordering,
recovery after a reconnect, resync, and the token rules."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import time

import pytest
import websocket

from ccweb.redis_client import reload_scripts
from realtime import history
from tests.factories import create_event, create_user
from tests.processes import log_text, wait_for
from tests.realtime.conftest import Player, Stack, Ws


def test_connect_then_a_spin_is_pushed_in_order(stack: Stack, player: Player) -> None:
    ws = Ws.connect(stack.url(token=player.token))
    hello, state = ws.opening()
    assert hello["data"]["seq"] == 0 and hello["data"]["heartbeat_s"] == 25
    assert state["user_id"] == player.user["id"]
    assert state["data"]["profile"]["gold_balance"] == 100_000
    spins = [stack.spin(player.token) for _ in range(4)]
    for spin in spins:
        stats = ws.until("stats_update")
        profile = ws.until("profile_update")
        assert stats["data"]["round_id"] == spin["round_id"]
        assert profile["data"]["gold_balance"] == spin["gold_balance"]
    seqs = [m["seq"] for m in ws.pushes()]
    assert seqs == list(range(1, len(seqs) + 1))  # strictly increasing, no gap
    assert all(m["user_id"] == player.user["id"] for m in ws.pushes())
    ws.close()


def test_streak_claim_and_worker_made_progress_are_pushed(stack: Stack, player: Player) -> None:
    event_id = create_event([{"type": "plays", "target": 3}])
    ws = Ws.connect(stack.url(token=player.token))
    ws.opening()
    status, claim = stack.call("POST", "/api/streak/claim", player.token)
    assert status == 200, claim
    streak = ws.until("streak_update")
    assert streak["data"]["count"] == 1
    profile = ws.until("profile_update", lambda m: m["data"].get("cause") == "streak.claim")
    assert profile["data"]["gold_balance"] == 100_000 + streak["data"]["reward"]["gold"]
    status, body = stack.call("POST", f"/api/events/{event_id}/participate", player.token)
    assert status in (200, 201), body
    stack.spin(player.token)
    progress = ws.until("event_progress")  # made by the worker's progress group
    item = next(i for i in progress["data"]["items"] if i.get("event_id") == event_id)
    assert item["progress"][0]["current"] == 1
    ws.close()


def test_reconnect_with_since_gets_exactly_the_missed_messages(
    stack: Stack, player: Player, rds
) -> None:
    uid = player.user["id"]
    ws = Ws.connect(stack.url(token=player.token))
    ws.opening()
    stack.spin(player.token)
    seen = ws.until("profile_update")
    epoch = history.position(rds, uid)[0]
    ws.close()
    for _ in range(3):
        stack.spin(player.token)
    wait_for(lambda: history.position(rds, uid)[1] >= seen["seq"] + 6, what="3 spins pushed")
    last = history.position(rds, uid)[1]
    again = Ws.connect(stack.url(token=player.token, since=seen["seq"], epoch=epoch))
    hello, _ = again.opening()
    assert hello["data"]["epoch"] == epoch
    missed = [again.recv() for _ in range(last - seen["seq"])]
    assert [m["seq"] for m in missed] == list(range(seen["seq"] + 1, last + 1))
    stack.spin(player.token)
    assert again.recv()["seq"] == last + 1  # live goes on after the backfill: no duplicate
    again.close()


def _expect_resync(ws: Ws) -> dict:
    """resync_required, then a fresh initial_state (returned)."""
    ws.until("resync_required")
    state = ws.recv()
    assert state["type"] == "initial_state"
    return state


def test_a_position_too_old_or_from_a_lost_epoch_gets_a_resync(
    stack: Stack, player: Player, rds
) -> None:
    uid = player.user["id"]
    stack.spin(player.token)
    wait_for(lambda: history.position(rds, uid)[1] >= 2, what="the spin pushed")
    epoch = history.position(rds, uid)[0]
    # more messages than the history keeps, through the system's own writer
    reload_scripts(rds)
    pipe = rds.pipeline(transaction=False)
    for i in range(history.HISTORY_LEN + 10):
        msg = json.dumps({"type": "user_action", "user_id": uid, "data": {}, "timestamp": "x"})
        history.queue_push(pipe, uid, msg, f"filler{i}:0")
    pipe.execute()
    old = Ws.connect(stack.url(token=player.token, since=1, epoch=epoch))
    assert old.recv()["type"] == "sync_connected"
    state = _expect_resync(old)
    assert state["seq"] == history.HISTORY_LEN + 12  # the snapshot covers everything so far
    old.close()
    # the history behind the epoch is lost (what a Redis restart looks like)
    last = history.position(rds, uid)[1]
    rds.delete(history.epoch_key(uid))
    lost = Ws.connect(stack.url(token=player.token, since=last, epoch=epoch))
    assert lost.recv()["type"] == "sync_connected"
    _expect_resync(lost)
    lost.close()


def test_a_live_epoch_change_resyncs_the_socket(stack: Stack, player: Player, rds) -> None:
    uid = player.user["id"]
    ws = Ws.connect(stack.url(token=player.token))
    ws.opening()
    stack.spin(player.token)
    first = ws.until("profile_update")
    rds.delete(history.epoch_key(uid))
    spin = stack.spin(player.token)
    state = _expect_resync(ws)
    assert state["data"]["profile"]["gold_balance"] == spin["gold_balance"]
    new_epoch = history.position(rds, uid)[0]
    stack.spin(player.token)
    nxt = ws.until("stats_update")
    assert nxt["seq"] > state["seq"]  # the socket follows the new epoch's numbering
    assert new_epoch and first["seq"] >= 1
    ws.close()


@pytest.mark.parametrize("token", ["", "not-a-jwt"])
def test_a_bad_token_closes_with_4401(stack: Stack, token: str) -> None:
    ws = Ws.connect(stack.url(token=token or None))
    assert ws.close_status() == (4401, "UNAUTHORIZED")


def test_a_socket_the_server_closed_is_not_read_as_http_afterwards(stack: Stack) -> None:
    """After the WebSocket handler ends, the TCP connection ends too: the client's close
    frame that answers the server's must not be parsed as a new HTTP request (pywsgi
    keeps connections alive; before the fix it answered ``400`` and logged "Invalid HTTP
    method" for every socket the server closed)."""
    ws = Ws.connect(stack.url(token="not-a-jwt"))
    assert ws.close_status() == (4401, "UNAUTHORIZED")
    ws.conn.send_close(websocket.STATUS_NORMAL)  # the client's answering close frame
    ws.conn.sock.shutdown(socket.SHUT_WR)  # ... and nothing more from this client
    ws.conn.sock.settimeout(5)
    assert ws.conn.sock.recv(4096) == b""  # closed by the server, no HTTP answer
    assert "Invalid HTTP method" not in log_text(stack.server)


def test_the_authorization_header_is_accepted(stack: Stack, player: Player) -> None:
    ws = Ws.connect(stack.url(), header=[f"Authorization: Bearer {player.token}"])
    hello, _ = ws.opening()
    assert hello["user_id"] == player.user["id"]
    ws.close()


def test_logout_closes_the_socket(stack: Stack, player: Player) -> None:
    ws = Ws.connect(stack.url(token=player.token))
    ws.opening()
    status, _ = stack.call("POST", "/api/auth/logout", player.token)
    assert status == 204
    assert ws.close_status() == (4401, "TOKEN_REVOKED")


def test_expiry_closes_the_socket_unless_refreshed(start_stack) -> None:
    stack = start_stack(CC_ACCESS_TTL_S="3")
    user = create_user(gold=10_000)
    plain = Ws.connect(stack.url(token=stack.login(user)))
    plain.opening()
    refreshed = Ws.connect(stack.url(token=stack.login(user)))
    refreshed.opening()
    time.sleep(1.1)  # a later token expires later (whole seconds)
    fresh = stack.login(user)
    refreshed.conn.send(json.dumps({"type": "refresh", "token": fresh}))
    refreshed.until("token_refreshed")
    assert plain.close_status() == (4401, "TOKEN_EXPIRED")
    stack.spin(fresh)
    assert refreshed.until("stats_update")  # still open past the first token's expiry
    other = stack.login(create_user())
    refreshed.conn.send(json.dumps({"type": "refresh", "token": other}))
    assert refreshed.close_status() == (4401, "UNAUTHORIZED")  # someone else's token


def test_an_unknown_client_message_is_ignored(stack: Stack, player: Player) -> None:
    ws = Ws.connect(stack.url(token=player.token))
    ws.opening()
    ws.conn.send("not json")
    ws.conn.send(json.dumps({"type": "ping"}))
    assert ws.recv()["type"] == "pong"
    ws.close()


def test_closed_sockets_are_unregistered(stack: Stack, player: Player) -> None:
    sockets = [Ws.connect(stack.url(token=player.token)) for _ in range(3)]
    for ws in sockets:
        ws.opening()
    assert _active(stack) == 3
    for ws in sockets:
        ws.conn.sock.close()  # gone without a close frame
    wait_for(lambda: _active(stack) == 0, what="sockets unregistered")


def _active(stack: Stack) -> float:
    """The server's open WebSocket count, from its /metrics."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=5)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    for line in text.splitlines():
        if line.startswith('cc_ws_active_connections{transport="websocket"}'):
            return float(line.split()[-1])
    return 0.0


def test_heartbeat_keeps_a_live_socket_and_drops_a_silent_one(start_stack) -> None:
    stack = start_stack(CC_WS_HEARTBEAT_S="0.3")
    user = create_user(gold=10_000)
    token = stack.login(user)
    live = Ws.connect(stack.url(token=token))
    live.opening()
    silent = Ws.connect(stack.url(token=token))
    silent.opening()
    assert _active(stack) == 2
    # the live client reads (websocket-client answers pings while it reads); the silent
    # one never does, so it never answers a ping and the server closes it
    live.conn.settimeout(0.2)
    deadline = time.monotonic() + 10
    while _active(stack) > 1 and time.monotonic() < deadline:
        try:
            live.recv()
        except websocket.WebSocketTimeoutException:
            pass
    assert _active(stack) == 1
    live.conn.settimeout(10)
    spin = stack.spin(token)
    assert live.until("stats_update")["data"]["round_id"] == spin["round_id"]
    live.close()
    silent.close()


def test_server_shutdown_closes_sockets_cleanly(stack: Stack, player: Player) -> None:
    """SIGTERM closes every socket with 1001 (going away) at once — the client knows to
    reconnect — instead of cutting the connection mid-frame at the end of the drain."""
    ws = Ws.connect(stack.url(token=player.token))
    ws.opening()
    stack.server.send_signal(signal.SIGTERM)
    assert ws.close_status()[0] == 1001
    assert stack.server.wait(10) == 0
