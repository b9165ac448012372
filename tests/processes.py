"""Starting the real entry points (``python -m ccweb.server``, ``python -m worker``) from
tests, and waiting for things to happen.

Why one module: the server, worker and fault tests all need "start the real process with
this environment, wait until it answers, keep its output somewhere readable, never leave
it running". Output goes to a log file, not a pipe: a process that logs more than a pipe
buffer (tracebacks during a store outage) would otherwise block on write and look hung.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def log_text(proc: subprocess.Popen) -> str:
    """What a process started here wrote so far (stdout and stderr together)."""
    path = getattr(proc, "log_path", None)
    return Path(path).read_text(errors="replace") if path else ""


def spawn(cmd: list[str], env: dict[str, str], log_path: Path | None = None) -> subprocess.Popen:
    """Start ``cmd`` in the repository root with its output in ``log_path`` (a temporary
    file when not given); the path is kept as ``proc.log_path`` (see :func:`log_text`)."""
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="cc-proc-", suffix=".log")
        os.close(fd)
        log_path = Path(name)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc.log_path = log_path  # type: ignore[attr-defined]
    return proc


def start_server(
    env: dict[str, str], processes: int = 1, log_path: Path | None = None
) -> tuple[subprocess.Popen, int]:
    """``python -m ccweb.server`` on a free port of 127.0.0.1, once it accepts
    connections. Returns ``(process, port)``; stop it with :func:`stop`."""
    port = free_port()
    proc = spawn(
        [sys.executable, "-m", "ccweb.server"],
        {
            **env,
            "PORT": str(port),
            "CC_HOST": "127.0.0.1",
            "CC_ACCESS_LOG": "0",
            "CC_WEB_PROCESSES": str(processes),
        },
        log_path,
    )
    deadline = time.monotonic() + 30
    while not port_open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise AssertionError(f"server did not start:\n{log_text(proc)[-4000:]}")
        time.sleep(0.1)
    return proc, port


def worker_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "worker", *args]


def start_worker(env: dict[str, str], *args: str, log_path: Path | None = None) -> subprocess.Popen:
    """``python -m worker *args`` (long-running unless ``--burst``)."""
    return spawn(worker_cmd(*args), env, log_path)


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> int | None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``; a stopped
    (SIGSTOP) process is continued first so it can act on the SIGTERM."""
    if proc.poll() is None:
        for sig in (signal.SIGCONT, signal.SIGTERM):
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                break
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    return proc.returncode
