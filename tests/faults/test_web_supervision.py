"""The pre-fork web server under process faults (real processes, SIGKILL): a web process
killed under load costs only the connections it held, the others keep serving and a
replacement starts; a crash loop stops the server instead of spinning; a process that
dies while the server shuts down is not replaced."""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass

from tests.faults.stores import FaultStack
from tests.processes import log_text, wait_for
from tests.web_processes import alive, children_of, owner, wait_until_each_serves


def two_children(parent: int) -> set[int]:
    def both() -> set[int] | None:
        kids = children_of(parent)
        return kids if len(kids) == 2 else None

    return wait_for(both, timeout=20, what="two web processes")


def signup(port: int) -> tuple[str, int]:
    """A new player through the API: (access token, user id)."""
    name = "w" + uuid.uuid4().hex[:12]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.request(
        "POST",
        "/api/auth/signup",
        body=json.dumps(
            {"site_id": name, "nickname": name[:20], "password": "pw-123456", "invite_code": "5858"}
        ),
        headers={"Content-Type": "application/json"},
    )
    resp = conn.getresponse()
    body = json.loads(resp.read())
    assert resp.status == 201, body
    return str(body["access_token"]), int(body["user"]["id"])


@dataclass
class Connection:
    """One client connection of the load: when it started, which web process accepted
    it (None if that could not be seen: it failed before its first answer), how many
    requests succeeded on it and the error that ended it, if any."""

    started: float
    owner: int | None = None
    ok: int = 0
    error: str | None = None


def load(port: int, token: str, parent: int, stop: threading.Event, out: list[Connection]) -> None:
    """A client: new connection, four kept-alive authenticated reads (PostgreSQL + Redis),
    close, again until ``stop``. Any status other than 200 is an error too."""
    headers = {"Authorization": f"Bearer {token}"}
    while not stop.is_set():
        c = Connection(started=time.monotonic())
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for _ in range(4):
                conn.request("GET", "/api/auth/me", headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    raise AssertionError(f"status {resp.status}")
                if c.owner is None and conn.sock is not None:
                    c.owner = owner(conn.sock, children_of(parent))
                c.ok += 1
        except (OSError, http.client.HTTPException, AssertionError) as exc:
            c.error = repr(exc)
        finally:
            conn.close()
            out.append(c)


def test_sigkill_of_one_web_process_under_load(fault_stack: FaultStack):
    """Eight clients keep requesting from a 2-process server while one web process is
    SIGKILLed. Only connections the killed process held may fail (those it had accepted,
    or that were queued on its socket when it died); every connection opened after it
    died succeeds, the survivor never fails one, and a replacement process (a new pid)
    starts and serves."""
    proc, port = fault_stack.start_server(processes=2)
    kids = two_children(proc.pid)
    token, _ = signup(port)
    stop = threading.Event()
    conns: list[Connection] = []
    clients = [
        threading.Thread(target=load, args=(port, token, proc.pid, stop, conns)) for _ in range(8)
    ]
    for t in clients:
        t.start()
    try:
        wait_for(lambda: {c.owner for c in conns if c.ok} >= kids, timeout=20, what="both serving")
        victim = min(kids)
        (survivor,) = kids - {victim}
        os.kill(victim, signal.SIGKILL)
        # reaped, not merely a zombie: a killed process's leader turns Z while its other
        # threads (gevent's resolver pool) still hold its sockets open
        wait_for(lambda: not os.path.exists(f"/proc/{victim}"), what="the killed one reaped")
        dead_at = time.monotonic()
        replacement = wait_for(
            lambda: next(iter(children_of(proc.pid) - kids), None), timeout=20, what="replacement"
        )
        wait_for(
            lambda: any(c.owner == replacement and c.ok == 4 for c in conns),
            timeout=30,
            what="the replacement serving",
        )
        time.sleep(0.5)  # some more load on the new pair
    finally:
        stop.set()
        for t in clients:
            t.join(timeout=30)

    failed = [c for c in conns if c.error]
    after = [c for c in conns if c.started > dead_at]
    print(
        f"\nconnections: {len(conns)} ({sum(c.ok for c in conns)} requests ok),"
        f" failed: {len(failed)} {[(c.owner, c.error) for c in failed]},"
        f" opened after the kill: {len(after)}"
    )
    assert proc.poll() is None, log_text(proc)[-3000:]  # the server itself kept running
    assert children_of(proc.pid) == {survivor, replacement}
    for c in failed:
        assert c.owner in (victim, None), c  # never on the survivor or the replacement
        assert c.owner == victim or c.started < dead_at, c  # unseen ones: opened before
    assert after and all(c.error is None and c.ok == 4 for c in after)
    assert all(c.error is None for c in conns if c.owner == survivor)
    assert len(failed) <= 2 * len(clients)


def test_a_crash_loop_stops_the_server_instead_of_spinning(fault_stack: FaultStack):
    """Each death within the window is replaced up to CC_WEB_RESTART_LIMIT times; the
    next one makes the parent stop the surviving process too and exit 1, so the
    supervisor above it (honcho, compose, systemd) sees the failure instead of a parent
    forking forever."""
    limit = 3
    proc, _ = fault_stack.start_server(processes=2, CC_WEB_RESTART_LIMIT=str(limit))
    for _ in range(limit):
        kids = two_children(proc.pid)
        victim = min(kids)
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda kids=kids: len(children_of(proc.pid) - kids) == 1,
            timeout=20,
            what="a replacement",
        )
    kids = two_children(proc.pid)
    os.kill(min(kids), signal.SIGKILL)
    assert proc.wait(timeout=20) == 1
    wait_for(lambda: not any(alive(k) for k in kids), what="the survivor stopped")
    assert "crash loop" in log_text(proc)


def test_a_process_dying_during_shutdown_is_not_replaced(fault_stack: FaultStack):
    """SIGTERM stops every web process; one that cannot act on it yet (SIGSTOPped) is
    SIGKILLed meanwhile: the parent does not replace it and exits 0 once both are gone."""
    proc, port = fault_stack.start_server(processes=2)
    kids = two_children(proc.pid)
    wait_until_each_serves(port, kids)  # (one still starting would just die of the SIGTERM)
    frozen = min(kids)
    (other,) = kids - {frozen}
    os.kill(frozen, signal.SIGSTOP)
    proc.send_signal(signal.SIGTERM)
    wait_for(lambda: not alive(other), what="the other process stopped")
    assert alive(frozen)
    os.kill(frozen, signal.SIGKILL)
    assert proc.wait(timeout=10) == 0
    assert "replaced by" not in log_text(proc)


def test_sigterm_lets_a_request_in_flight_finish(fault_stack: FaultStack):
    """A spin that has committed and is still on its way out (held by a failpoint right
    after the commit) when the server gets SIGTERM still gets its 200; then the server
    exits 0. Before, the web process exited under it and the client saw a reset."""
    proc, port = fault_stack.start_server(processes=2, CC_FAILPOINTS="after_commit=sleep:1.5")
    token, user_id = signup(port)
    rounds_before = fault_stack.scalar(
        "SELECT count(*) FROM game_rounds WHERE user_id = %s", (user_id,)
    )
    result: dict[str, object] = {}

    def spin() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        conn.request(
            "POST",
            "/api/games/slot/spin",
            body=json.dumps({"bet": 10}),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        result["status"], result["body"] = resp.status, json.loads(resp.read())

    client = threading.Thread(target=spin)
    client.start()
    wait_for(
        lambda: (
            fault_stack.scalar("SELECT count(*) FROM game_rounds WHERE user_id = %s", (user_id,))
            == rounds_before + 1
        ),
        what="the round committed",
    )
    proc.send_signal(signal.SIGTERM)
    client.join(timeout=20)
    assert result.get("status") == 200, result
    assert proc.wait(timeout=15) == 0
