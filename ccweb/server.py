"""Production entry point: ``python -m ccweb.server``.

gevent monkey-patching happens first, before anything imports sockets or threads, and
psycopg2 is made cooperative (psycogreen) so one slow query never stalls the other
players on this process. The gevent WSGI server sets ``TCP_NODELAY`` on every accepted
socket: pywsgi writes headers and body separately, and without it each kept-alive
request waits ~40 ms for a delayed ACK (PERFORMANCE.md, trap 1).

``CC_WEB_PROCESSES`` > 1: a parent process (:class:`Supervisor`) forks the web processes,
replaces one that dies, and gives them a shared prometheus_client multiprocess directory
so ``/metrics`` answers for all of them. Why this server and not gunicorn's gevent
worker, which would supervise too: at equal settings gunicorn used 45–60 % more CPU per
``/health`` request and ~10 % more per spin, with 1.4–2.4× the ``/health`` p99
(bench/server_compare.py, bench/RESULTS.md).
"""

from gevent import monkey

monkey.patch_all()

from psycogreen.gevent import patch_psycopg  # noqa: E402

patch_psycopg()

import contextlib  # noqa: E402
import gc  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import deque  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from gevent.pool import Pool  # noqa: E402
from gevent.pywsgi import WSGIHandler, WSGIServer  # noqa: E402

from ccweb import create_app, redis_flush  # noqa: E402
from ccweb.config import get_settings  # noqa: E402
from ccweb.http.request_headers import RequestHeaders  # noqa: E402
from ccweb.logs import configure_logging  # noqa: E402

log = logging.getLogger("ccweb.server")


class NoDelayHandler(WSGIHandler):
    """pywsgi's handler with TCP_NODELAY, and two per-request costs removed through its
    public hooks. Each kept for a gain measured by removing it (bench/server_compare.py,
    one process, runs interleaved, medians; bench/RESULTS.md):

    * ``MessageClass``: our header parser instead of the email-package one — web CPU per
      ``/health`` request −18 %, per spin −4 %;
    * ``log_request``: no pywsgi access line (formatted even when the server has no log;
      the app writes its own structured one, ``CC_ACCESS_LOG``) — −5 % on ``/health``.

    An override of pywsgi's private ``_sendall`` (one ``send`` before ``sendall``) was
    dropped: −5…7 % CPU on ``/health`` but nothing measurable on a spin or a cached
    dashboard read, not enough to depend on a private method's contract.
    """

    MessageClass = RequestHeaders  # ccweb.http.request_headers

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(OSError):  # not TCP (unix socket): nothing to do
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().__init__(sock, *args, **kwargs)

    def log_request(self) -> None:
        """No pywsgi access line: the app writes its own (``CC_ACCESS_LOG``)."""

    def run_application(self) -> None:
        """A WebSocket upgrade owns its connection: when its handler returns, the TCP
        connection ends. flask-sock hands pywsgi an empty response in gevent mode, so
        without this pywsgi keeps the connection alive and parses the client's closing
        frames as the next HTTP request (a ``400`` and an "Invalid HTTP method" error line
        per socket the server closed)."""
        try:
            super().run_application()
        finally:
            if self.environ.get("HTTP_UPGRADE", "").lower() == "websocket":
                self.close_connection = True


def bind(host: str, port: int, reuseport: bool = False) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind((host, port))
    listener.listen(2048)
    return listener


def tune_gc() -> None:
    """Fewer cyclic-GC passes: requests allocate many short-lived objects but few cycles,
    and every gen-0 pass also walks the long-lived app objects unless they are frozen
    (Instagram's gc.freeze advice). Measured with bench/cpu_cost.py."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


DRAIN_S = 5.0  # after SIGTERM, requests in flight get this long to finish


def _serve(listener: socket.socket | None) -> None:
    """One gevent server process: create the app here (after any fork) and serve.

    SIGTERM/SIGINT close the listening socket and let the requests in flight finish (up
    to ``DRAIN_S``; connections still open then, e.g. idle kept-alive ones, are closed).
    The handlers run in a pool for that: without one, gevent's server cannot wait for
    them and the process exited under requests that had committed but not answered."""
    settings = get_settings()
    if listener is None:
        listener = bind(settings.host, settings.port, reuseport=True)
    app = create_app(settings)
    redis_flush.enable_group_flush()
    tune_gc()
    server = WSGIServer(
        listener, app, handler_class=NoDelayHandler, spawn=Pool(), log=None, error_log=log
    )

    def stop(*_: Any) -> None:
        log.info("shutting down web server (pid %d)", os.getpid())
        # imported here: the hub pulls in prometheus_client, which the pre-fork parent must
        # not load before it has set PROMETHEUS_MULTIPROC_DIR
        from realtime.hub import close_local_sockets

        close_local_sockets()  # realtime sockets would otherwise hold the drain to its end
        server.close()  # serve_forever then drains the pool

    gevent.signal_handler(signal.SIGTERM, stop)
    gevent.signal_handler(signal.SIGINT, stop)
    server.serve_forever(stop_timeout=DRAIN_S)
    # finalize frozen objects now, while gevent and logging are still importable
    gc.unfreeze()
    gc.collect()


RESTART_WINDOW_S = 60.0  # CC_WEB_RESTART_LIMIT replacements within it; one more: crash loop


class Supervisor:
    """The pre-fork parent: ``processes`` gevent servers, each with its own SO_REUSEPORT
    socket on the same port (the kernel spreads new connections evenly; a shared accept
    socket let one process take most kept-alive connections and doubled tail latency).

    The parent serves nothing; it keeps the count. A web process that dies on its own
    (a crash, the OOM killer, a SIGKILL) is replaced at once, so the survivors do not
    carry its share for good: only the connections it held fail. More than
    ``restart_limit`` (``CC_WEB_RESTART_LIMIT``) replacements within ``RESTART_WINDOW_S``
    is a crash loop, which a restart will not fix: the parent stops everything and exits
    1, handing the problem to its own supervisor (honcho, compose, systemd) instead of
    spinning; so does a fork that fails. SIGTERM/SIGINT stop every process and nothing is
    replaced from then on; the exit status is 0. The parent also removes an exited
    process's live gauges from the metrics directory (``mark_process_dead``); its
    counters stay, so totals never go backwards.
    """

    def __init__(self, processes: int, restart_limit: int) -> None:
        self.processes = processes
        self.restart_limit = restart_limit
        self.pid = os.getpid()
        self.children: set[int] = set()
        self.replaced: deque[float] = deque()
        self.stopping = False
        self.status = 0

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for _ in range(self.processes):
            if not self._spawn():
                break
        while self.children:
            pid, status = os.waitpid(-1, 0)
            if pid not in self.children:
                continue  # gevent's child watcher may report a reaped child once more
            self.children.discard(pid)
            _mark_process_dead(pid)
            if self.stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            now = time.monotonic()
            while self.replaced and now - self.replaced[0] > RESTART_WINDOW_S:
                self.replaced.popleft()
            if len(self.replaced) >= self.restart_limit:
                log.error(
                    "web process %d exited (%d): more than %d replacements within %.0f s,"
                    " a crash loop; stopping the server",
                    pid,
                    code,
                    self.restart_limit,
                    RESTART_WINDOW_S,
                )
                self.status = 1
                self.stop()
                continue
            self.replaced.append(now)
            new = self._spawn()
            if new:
                log.error("web process %d exited (%d); replaced by %d", pid, code, new)
        return self.status

    def stop(self) -> None:
        self.stopping = True
        for child in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    def _on_signal(self, signum: int, _: Any) -> None:
        if os.getpid() != self.pid:
            # a process forked a moment ago, before it replaced this inherited handler:
            # it must not act as the parent (signal its siblings); it just ends
            os._exit(0)
        log.info("signal %d: stopping the web processes", signum)
        self.stop()

    def _spawn(self) -> int:
        """Fork one web process; its pid, or 0 if the fork failed (then everything stops:
        a server short of processes would not say so)."""
        try:
            pid = os.fork()
        except OSError:
            log.exception("cannot fork a web process; stopping the server")
            self.status = 1
            self.stop()
            return 0
        if pid == 0:
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _serve(None)
                code = 0
            except BaseException:
                log.exception("web process %d failed", os.getpid())
            finally:
                os._exit(code)
        self.children.add(pid)
        if self.stopping:  # a signal came while forking: this one stops too
            os.kill(pid, signal.SIGTERM)
        return pid


def _mark_process_dead(pid: int) -> None:
    from prometheus_client import multiprocess  # the directory is set by now

    multiprocess.mark_process_dead(pid)


@contextlib.contextmanager
def metrics_directory() -> Iterator[str]:
    """A fresh, empty directory for this server's prometheus_client multiprocess files
    (``PROMETHEUS_MULTIPROC_DIR``), removed when the server stops. prometheus_client
    chooses how it stores values when it is first imported, so the variable must be set
    before any web process imports it — here, in the parent, before the first fork.

    In memory (``/dev/shm``) where there is one: every request writes its metrics into
    these memory-mapped files, and on a disk file system a write to a page the kernel is
    writing back can wait for the disk (gunicorn puts its heartbeat files there for the
    same reason). One-minute benchmarks showed no difference either way."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before its multiprocess directory")
    shm = "/dev/shm"
    in_memory = os.path.isdir(shm) and os.access(shm, os.W_OK)
    path = tempfile.mkdtemp(prefix="ccweb-metrics-", dir=shm if in_memory else None)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    settings = get_settings()
    shown = "127.0.0.1" if settings.host == "0.0.0.0" else settings.host
    configure_logging(settings)
    log.info(
        "serving on http://%s:%d with %d process(es)", shown, settings.port, settings.web_processes
    )
    if settings.web_processes <= 1:
        _serve(bind(settings.host, settings.port))  # its own supervisor restarts it
        return
    bind(settings.host, settings.port, reuseport=True).close()  # fail early if taken
    with metrics_directory():
        status = Supervisor(settings.web_processes, settings.web_restart_limit).run()
    sys.exit(status)


if __name__ == "__main__":
    main()
