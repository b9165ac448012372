"""Fan-out: a change made through one web process reaches sockets on another, and a
socket that does not read is dropped while the others keep receiving."""

from __future__ import annotations

import http.client
import json
import socket
import time
import uuid

import websocket

from ccweb import events
from realtime import history
from tests.factories import create_user
from tests.processes import wait_for
from tests.realtime.conftest import TIMEOUT, Ws
from tests.web_processes import children_of, owner, wait_until_each_serves


def test_a_change_through_one_process_reaches_a_socket_on_the_other(start_stack) -> None:
    stack = start_stack(processes=2)
    pids = wait_for(
        lambda: len(children_of(stack.server.pid)) == 2 and children_of(stack.server.pid)
    )
    wait_until_each_serves(stack.port, pids)
    user = create_user(gold=10_000)
    token = stack.login(user)
    by_pid: dict[int, Ws] = {}
    for _ in range(40):
        ws = Ws.connect(stack.url(token=token))
        who = owner(ws.conn.sock, pids)
        if who is None or who in by_pid:
            ws.close()
            continue
        ws.opening()
        by_pid[who] = ws
        if len(by_pid) == 2:
            break
    assert set(by_pid) == pids
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=TIMEOUT)
    conn.request(
        "POST",
        "/api/games/slot/spin",
        body=json.dumps({"bet": 100}),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "X-Idempotency-Key": uuid.uuid4().hex,
        },
    )
    resp = conn.getresponse()
    spin = json.loads(resp.read())
    assert resp.status == 200, spin
    served_by = owner(conn.sock, pids)
    conn.close()
    assert served_by in pids
    for ws in by_pid.values():  # including the socket on the process that did not serve it
        assert ws.until("stats_update")["data"]["round_id"] == spin["round_id"]
        ws.close()


def _metric(port: int, name: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_a_slow_socket_is_dropped_while_others_keep_receiving(start_stack, rds) -> None:
    stack = start_stack(CC_WS_QUEUE_SIZE="8")
    slow_user, fast_user = create_user(), create_user(gold=10_000)
    slow = Ws.connect(
        stack.url(token=stack.login(slow_user)),
        sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),),
    )
    slow.opening()
    fast_token = stack.login(fast_user)
    fast = Ws.connect(stack.url(token=fast_token))
    fast.opening()
    # Announcements for the slow player, as the worker's script makes them, big enough
    # to fill the socket buffers quickly; the slow client never reads them.
    uid = slow_user["id"]
    channel = history.channel(events.partition_of(uid))
    pad = "x" * 32_000
    seq = 0
    while _metric(stack.port, "cc_ws_dropped_slow_total") < 1:
        for _ in range(50):
            seq += 1
            msg = json.dumps(
                {
                    "type": "user_action",
                    "user_id": uid,
                    "data": {"pad": pad},
                    "timestamp": events.iso(events.utcnow()),
                    "seq": seq,
                }
            )
            rds.publish(channel, f"{uid} e1 {seq} {msg}")
        assert seq < 5_000, "the slow socket was never dropped"
        time.sleep(0.05)
    stack.spin(fast_token)
    assert fast.until("stats_update")  # the fast socket is unaffected
    wait_for(lambda: _metric(stack.port, 'cc_ws_active_connections{transport="websocket"}') == 1)
    slow.conn.settimeout(TIMEOUT)
    try:  # what was in flight, then the end of the connection (not a read timeout)
        while slow.conn.recv():
            pass
    except websocket.WebSocketTimeoutException:
        raise AssertionError("the slow socket is still open") from None
    except (websocket.WebSocketException, OSError):
        pass
    fast.close()


def _kill_pubsub_connections(rds) -> int:
    """Drop this test's pub/sub connections (the hubs' and the denylists'), as a Redis
    restart or a network cut would; other runs' connections (other DB indexes) stay."""
    db = rds.connection_pool.connection_kwargs.get("db", 0)
    killed = 0
    for client in rds.client_list(_type="pubsub"):
        if int(client.get("db", -1)) == db:
            killed += rds.client_kill_filter(_id=client["id"])
    return killed


def test_the_hub_reconnects_and_fills_the_gap_from_the_history(stack, player, rds) -> None:
    ws = Ws.connect(stack.url(token=player.token))
    ws.opening()
    stack.spin(player.token)
    ws.until("profile_update")
    # cut the hub off again and again while playing: announcements made while it is
    # away are lost to pub/sub; nothing is played after the last cut, so only the
    # catch-up after reconnecting (not a later message's gap) can bring them
    for _ in range(15):
        assert _kill_pubsub_connections(rds) >= 1
        stack.spin(player.token)
    last = wait_for(lambda: history.position(rds, player.user["id"])[1] >= 32 and 32)
    while not ws.pushes() or ws.pushes()[-1]["seq"] < last:
        ws.recv()
    assert [m["seq"] for m in ws.pushes()] == list(range(1, last + 1))
    ws.close()
