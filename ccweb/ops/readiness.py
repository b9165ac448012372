"""Sink probes for ``/ready``: is the configured ClickHouse / Kafka broker answering?

Why here and not in the sinks' own modules: readiness must not create the producer or
the ingester's client as a side effect (a web process has no use for either), and it
must stay cheap and bounded — a hung sink may not hold a load balancer's probe. Each
probe opens one short connection with at most ``timeout`` seconds for everything
(connect, request, reply) and reports a word:

- ``"disabled"`` — not configured (empty CLICKHOUSE_URL / KAFKA_BOOTSTRAP_SERVERS);
- ``"up"`` — answered a real request (ClickHouse ``SELECT 1``, Kafka ApiVersions);
- ``"down"`` — refused, timed out, or answered with an error.

The sinks are optional (SPEC §4): events wait in the outbox/streams while one is down,
so ``/ready`` reports them without failing on them.
"""

from __future__ import annotations

import itertools
import logging
import socket
import struct
import time
from contextvars import ContextVar

from clickhouse_driver import Client
from clickhouse_driver.util.helpers import parse_url
from kafka.protocol.metadata import ApiVersionsRequest, ApiVersionsResponse

PROBE_TIMEOUT_S = 1.0
_correlation = itertools.count(1)
_probing: ContextVar[bool] = ContextVar("cc_ready_probe", default=False)


class _QuietWhileProbing(logging.Filter):
    """clickhouse-driver logs every failed connect with a traceback at WARNING: right for
    the ingester, noise from a probe that runs every few seconds and reports "down"
    anyway. Drops those records only inside a probe (a context variable: per thread
    and per greenlet)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _probing.get()


logging.getLogger("clickhouse_driver.connection").addFilter(_QuietWhileProbing())


def clickhouse_status(url: str, timeout: float = PROBE_TIMEOUT_S) -> str:
    """``SELECT 1`` over the native protocol, the way the ingester connects."""
    if not url:
        return "disabled"
    half = timeout / 2  # connect, then the query: together within ``timeout``
    try:
        host, kwargs = parse_url(url)
    except ValueError:
        return "down"
    kwargs.update(connect_timeout=half, send_receive_timeout=half, sync_request_timeout=half)
    client = Client(host, **kwargs)  # timeouts of the URL's query string overridden: bounded
    token = _probing.set(True)
    try:
        return "up" if client.execute("SELECT 1") == [(1,)] else "down"
    except Exception:  # any failure means "not usable now"; /ready describes, never raises
        return "down"
    finally:
        client.disconnect()
        _probing.reset(token)


def _split(bootstrap: str) -> list[tuple[str, int]]:
    out = []
    for item in bootstrap.split(","):
        item = item.strip().split("://", 1)[-1]
        if item:
            host, _, port = item.rpartition(":")
            out.append((host.strip("[]") or "127.0.0.1", int(port or 9092)))
    return out


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        data += chunk
    return data


def kafka_status(bootstrap: str, timeout: float = PROBE_TIMEOUT_S) -> str:
    """ApiVersions (v0, which every broker answers) to the bootstrap servers in turn,
    all within ``timeout``: "up" when one answers without an error code."""
    if not bootstrap:
        return "disabled"
    try:
        servers = _split(bootstrap)
    except ValueError:
        return "down"
    deadline = time.monotonic() + timeout
    for host, port in servers:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        correlation = next(_correlation) & 0x7FFFFFFF
        request = ApiVersionsRequest(version=0)
        request.with_header(correlation_id=correlation, client_id="cc-ready")
        try:
            with socket.create_connection((host, port), timeout=left) as sock:
                sock.sendall(request.encode(version=0, header=True, framed=True))
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                size = struct.unpack("!i", _recv_exactly(sock, 4))[0]
                body = _recv_exactly(sock, size)
            response = ApiVersionsResponse.decode(body, version=0, header=True)
        except Exception:  # refused, timed out, garbage: try the next server
            continue
        if response.header.correlation_id == correlation and response.error_code == 0:
            return "up"
    return "down"
