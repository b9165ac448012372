"""The SSE fallback against the real server: same messages, ``id:`` = seq,
``Last-Event-ID`` + ``epoch`` resume, heartbeats as comment lines, 401 on a bad token."""

from __future__ import annotations

import http.client
import json

from realtime import history
from tests.processes import wait_for
from tests.realtime.conftest import Player, Sse, Stack


def _open(stack: Stack, token: str, headers: dict[str, str] | None = None, query: str = "") -> Sse:
    sse = Sse(
        stack.port,
        f"/api/realtime/stream{query}",
        {"Authorization": f"Bearer {token}", **(headers or {})},
    )
    assert sse.resp.status == 200
    assert sse.resp.getheader("Content-Type", "").startswith("text/event-stream")
    return sse


def test_stream_pushes_with_ids_and_resumes_from_last_event_id(
    stack: Stack, player: Player, rds
) -> None:
    uid = player.user["id"]
    sse = _open(stack, player.token)
    assert sse.event()[1]["type"] == "sync_connected"
    assert sse.event()[1]["type"] == "initial_state"
    spin = stack.spin(player.token)
    ident, stats = sse.until("stats_update")
    assert stats["data"]["round_id"] == spin["round_id"] and ident == str(stats["seq"])
    ident, profile = sse.until("profile_update")
    assert profile["data"]["gold_balance"] == spin["gold_balance"]
    sse.close()
    epoch = history.position(rds, uid)[0]
    for _ in range(2):
        stack.spin(player.token)
    wait_for(lambda: history.position(rds, uid)[1] >= int(ident) + 4, what="2 spins pushed")
    again = _open(stack, player.token, {"Last-Event-ID": ident}, f"?epoch={epoch}")
    again.event(), again.event()  # sync_connected, initial_state
    ids = [again.event()[0] for _ in range(4)]
    assert ids == [str(int(ident) + n) for n in range(1, 5)]
    again.close()


def test_stream_heartbeat_and_resync(start_stack, rds) -> None:
    from tests.factories import create_user

    stack = start_stack(CC_WS_HEARTBEAT_S="0.2")
    token = stack.login(create_user())
    sse = _open(stack, token, {"Last-Event-ID": "5"}, "?epoch=123")
    assert sse.event()[1]["type"] == "sync_connected"
    assert sse.event()[1]["type"] == "resync_required"  # nothing resumable at 5 of "123"
    assert sse.event()[1]["type"] == "initial_state"
    line = b""
    while not line.startswith(b":"):
        line = sse.resp.fp.readline()
    assert line == b": ping\n"
    sse.close()


def test_stream_with_a_bad_token_is_401_json(stack: Stack) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=5)
    conn.request("GET", "/api/realtime/stream?token=nope")
    resp = conn.getresponse()
    body = json.loads(resp.read())
    assert resp.status == 401 and body["error"]["code"] == "UNAUTHORIZED"
    conn.close()
