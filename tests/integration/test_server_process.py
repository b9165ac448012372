"""The production entry point (``python -m ccweb.server``) in a real subprocess:
gevent + psycogreen serve DB-backed requests, and kept-alive connections do not stall
on Nagle's algorithm (TCP_NODELAY)."""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.factories import create_user

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(subprocess_env, processes: int = 1):
    port = free_port()
    env = {
        **subprocess_env,
        "PORT": str(port),
        "CC_HOST": "127.0.0.1",
        "CC_ACCESS_LOG": "0",
        "CC_WEB_PROCESSES": str(processes),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "ccweb.server"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise AssertionError(proc.stdout.read().decode() if proc.stdout else "no output")
    return proc, port


@pytest.fixture
def server(subprocess_env):
    proc, port = start_server(subprocess_env)
    yield port
    proc.terminate()
    assert proc.wait(timeout=10) == 0  # SIGTERM stops it cleanly


def test_keepalive_requests_do_not_stall(server):
    user = create_user()
    conn = http.client.HTTPConnection("127.0.0.1", server)
    conn.request(
        "POST",
        "/api/auth/login",
        body=json.dumps({"site_id": user["site_id"], "password": user["password"]}),
        headers={"Content-Type": "application/json"},
    )
    token = json.loads(conn.getresponse().read())["access_token"]
    timings = []
    for _ in range(30):
        t0 = time.perf_counter()
        conn.request("GET", "/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        body = json.loads(resp.read())
        timings.append(time.perf_counter() - t0)
        assert resp.status == 200 and body["id"] == user["id"]
    # Nagle + delayed ACK would put every kept-alive request near 40 ms.
    assert statistics.median(timings) < 0.02, timings


def children_of(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def test_prefork_serves_from_several_processes_and_stops_them_all(subprocess_env):
    proc, port = start_server(subprocess_env, processes=2)
    try:
        kids = children_of(proc.pid)
        assert len(kids) == 2
        for _ in range(20):
            conn = http.client.HTTPConnection("127.0.0.1", port)
            conn.request("GET", "/health")
            assert conn.getresponse().status == 200
            conn.close()
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    time.sleep(0.2)
    assert all(
        not Path(f"/proc/{k}").exists() or "Z" in Path(f"/proc/{k}/stat").read_text() for k in kids
    )
