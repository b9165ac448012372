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
import uuid

import jwt
import pytest

from ccweb.config import get_settings
from tests.factories import create_user
from tests.processes import ROOT, start_server, stop, wait_for
from tests.web_processes import alive, children_of


@pytest.fixture
def server(subprocess_env):
    proc, port = start_server(subprocess_env)
    yield port
    assert stop(proc) == 0  # SIGTERM stops it cleanly


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
    conn.close()  # (an idle kept-alive connection holds the server's SIGTERM drain)
    # Nagle + delayed ACK would put every kept-alive request near 40 ms.
    assert statistics.median(timings) < 0.02, timings


def raw_exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b"Connection: close" in b"".join(chunks):
                break
        return b"".join(chunks)


def test_request_headers_as_the_server_reads_them(server):
    """The server reads headers with ccweb.http.request_headers: folded lines, mixed case,
    a chunked body, and malformed or oversized header blocks get a 400, not a crash."""
    user = create_user()
    body = json.dumps({"site_id": user["site_id"], "password": user["password"]}).encode()
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    ok = raw_exchange(
        server,
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\ncontent-TYPE: application/json\r\n"
        b"X-Folded: first\r\n  second\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 999\r\nConnection: close\r\n\r\n" + chunked,
    )
    assert ok.startswith(b"HTTP/1.1 200"), ok[:200]
    assert b'"access_token"' in ok
    for bad in (
        b"GET /health HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
        b"GET /health HTTP/1.1\r\n continuation first\r\n\r\n",
        b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
        b"GET /health HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n",
    ):
        assert raw_exchange(server, bad).startswith(b"HTTP/1.1 400"), bad[:60]
    fine = raw_exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert fine.startswith(b"HTTP/1.1 200")


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
        assert stop(proc) == 0
    wait_for(lambda: not any(alive(k) for k in kids), what="every web process stopped")


def test_the_server_module_leaves_prometheus_client_unimported():
    """The pre-fork parent sets PROMETHEUS_MULTIPROC_DIR before its first fork, and
    prometheus_client fixes how it stores values when first imported: importing the
    entry point must not import it already (the parent refuses to start if it did)."""
    probe = "import sys, ccweb.server; print('prometheus_client' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr[-2000:]


def test_server_entry_point_patches_gevent_first_and_makes_psycopg2_cooperative(
    subprocess_env,
):
    """Importing the production entry point monkey-patches sockets and installs the
    psycogreen wait callback, so one slow query cannot stall a whole web process: 8
    concurrent 0.3 s queries finish in about 0.3 s, not 2.4 s."""
    probe = (
        "import ccweb.server, time, gevent, gevent.monkey, psycopg2.extensions\n"
        "from sqlalchemy import text\n"
        "from ccweb.db import autocommit\n"
        "assert gevent.monkey.is_module_patched('socket')\n"
        "assert psycopg2.extensions.get_wait_callback() is not None\n"
        "def slow():\n"
        "    with autocommit() as c: c.execute(text('SELECT pg_sleep(0.3)')).all()\n"
        "slow()\n"
        "t = time.monotonic(); gevent.joinall([gevent.spawn(slow) for _ in range(8)])\n"
        "print(round(time.monotonic() - t, 2))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip().splitlines()[-1]) < 1.2


def test_a_store_outage_is_a_retryable_503_not_a_500(subprocess_env):
    """Redis or PostgreSQL unreachable (a closed port, really refused): requests that
    need it get 503 SERVICE_UNAVAILABLE with Retry-After and the error shape."""
    user = create_user()
    now = int(time.time())
    claims = {"sub": str(user["id"]), "jti": "outage", "fam": uuid.uuid4().hex, "typ": "access"}
    token = jwt.encode({**claims, "iat": now, "exp": now + 60}, get_settings().jwt_secret)
    login = json.dumps({"site_id": user["site_id"], "password": user["password"]})
    redis_down = {"REDIS_URL": "redis://127.0.0.1:1/0"}
    pg_down = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere"}
    for broken, method, path, body, headers in (
        (redis_down, "POST", "/api/auth/login", login, {"Content-Type": "application/json"}),
        (redis_down, "GET", "/api/auth/me", None, {"Authorization": f"Bearer {token}"}),
        (pg_down, "POST", "/api/auth/login", login, {"Content-Type": "application/json"}),
        (pg_down, "GET", "/api/auth/me", None, {"Authorization": f"Bearer {token}"}),
    ):
        proc, port = start_server({**subprocess_env, **broken})
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = json.loads(resp.read())
            conn.close()
            assert resp.status == 503, (broken, path, data)
            assert resp.getheader("Retry-After") == "1"
            assert data["error"]["code"] == "SERVICE_UNAVAILABLE"
        finally:
            stop(proc)
