"""Production entry point: ``python -m ccweb.server``.

gevent monkey-patching happens first, before anything imports sockets or threads, and
psycopg2 is made cooperative (psycogreen) so one slow query never stalls the other
players on this process. The gevent WSGI server sets ``TCP_NODELAY`` on every accepted
socket: pywsgi writes headers and body separately, and without it each kept-alive
request waits ~40 ms for a delayed ACK (PERFORMANCE.md, trap 1).
"""

from gevent import monkey

monkey.patch_all()

from psycogreen.gevent import patch_psycopg  # noqa: E402

patch_psycopg()

import contextlib  # noqa: E402
import gc  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from gevent.pywsgi import WSGIHandler, WSGIServer  # noqa: E402

from ccweb import create_app, redis_flush  # noqa: E402
from ccweb.config import get_settings  # noqa: E402
from ccweb.http.request_headers import RequestHeaders  # noqa: E402
from ccweb.logs import configure_logging  # noqa: E402

log = logging.getLogger("ccweb.server")


class NoDelayHandler(WSGIHandler):
    """pywsgi's handler with TCP_NODELAY, and three per-request costs removed (measured
    with py-spy on ``GET /health``, where they were ~15 % of the process's CPU)."""

    MessageClass = RequestHeaders  # not the email-package parser (ccweb.http.request_headers)

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(OSError):  # not TCP (unix socket): nothing to do
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().__init__(sock, *args, **kwargs)

    def log_request(self) -> None:
        """No pywsgi access line (it formats one even when the server has no log): the
        app writes its own structured access log (``CC_ACCESS_LOG``)."""

    def _sendall(self, data: bytes) -> None:
        """One ``send`` first: a response almost always fits the socket buffer, and
        gevent's ``sendall`` asks the kernel for SO_SNDBUF and slices on every call."""
        try:
            sent = self.socket.send(data)
            if sent < len(data):
                self.socket.sendall(memoryview(data)[sent:])
        except OSError as ex:
            self.status = f"socket error: {ex}"
            code = getattr(self, "code", None)
            if isinstance(code, int) and code > 0:
                self.code = -code  # as pywsgi marks a response that failed to send
            raise
        self.response_length += len(data)


def bind(host: str, port: int, reuseport: bool = False) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind((host, port))
    listener.listen(2048)
    return listener


def make_server(app: Any, host: str, port: int) -> WSGIServer:
    return WSGIServer(bind(host, port), app, handler_class=NoDelayHandler, log=None, error_log=log)


def tune_gc() -> None:
    """Fewer cyclic-GC passes: requests allocate many short-lived objects but few cycles,
    and every gen-0 pass also walks the long-lived app objects unless they are frozen
    (Instagram's gc.freeze advice). Measured with bench/cpu_cost.py."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _serve(listener: socket.socket | None) -> None:
    """One gevent server process: create the app here (after any fork) and serve."""
    settings = get_settings()
    if listener is None:
        listener = bind(settings.host, settings.port, reuseport=True)
    app = create_app(settings)
    redis_flush.enable_group_flush()
    tune_gc()
    server = WSGIServer(listener, app, handler_class=NoDelayHandler, log=None, error_log=log)

    def stop(*_: Any) -> None:
        log.info("shutting down web server (pid %d)", os.getpid())
        server.stop(timeout=5)

    gevent.signal_handler(signal.SIGTERM, stop)
    gevent.signal_handler(signal.SIGINT, stop)
    server.serve_forever()
    # finalize frozen objects now, while gevent and logging are still importable
    gc.unfreeze()
    gc.collect()


def _prefork(processes: int) -> int:
    """Fork ``processes`` servers, each with its own SO_REUSEPORT socket on the same port:
    the kernel spreads new connections evenly (a shared accept socket let one process take
    most kept-alive connections and doubled tail latency). The parent only supervises: it
    forwards SIGTERM/SIGINT and exits non-zero if a child dies on its own."""
    children: set[int] = set()
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:
            try:
                _serve(None)
            finally:
                os._exit(0)
        children.add(pid)
    stopping = {"flag": False}

    def forward(signum: int, _: Any) -> None:
        stopping["flag"] = True
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    while children:
        pid, code = os.waitpid(-1, 0)
        children.discard(pid)
        if not stopping["flag"]:
            log.error("web process %d exited (%d); stopping the others", pid, code)
            status = 1
            forward(signal.SIGTERM, None)
    return status


def main() -> None:
    settings = get_settings()
    shown = "127.0.0.1" if settings.host == "0.0.0.0" else settings.host
    configure_logging(settings)
    log.info(
        "serving on http://%s:%d with %d process(es)", shown, settings.port, settings.web_processes
    )
    if settings.web_processes <= 1:
        _serve(bind(settings.host, settings.port))
    else:
        bind(settings.host, settings.port, reuseport=True).close()  # fail early if taken
        sys.exit(_prefork(settings.web_processes))


if __name__ == "__main__":
    main()
