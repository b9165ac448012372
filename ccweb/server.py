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
import logging  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from gevent.pywsgi import WSGIHandler, WSGIServer  # noqa: E402

from ccweb import create_app  # noqa: E402
from ccweb.config import get_settings  # noqa: E402

log = logging.getLogger("ccweb.server")


class NoDelayHandler(WSGIHandler):
    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(OSError):  # not TCP (unix socket): nothing to do
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().__init__(sock, *args, **kwargs)


def make_server(app: Any, host: str, port: int) -> WSGIServer:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind((host, port))
    listener.listen(2048)
    return WSGIServer(listener, app, handler_class=NoDelayHandler, log=None, error_log=log)


def main() -> None:
    settings = get_settings()
    app = create_app(settings)
    server = make_server(app, settings.host, settings.port)

    def stop(*_: Any) -> None:
        log.info("shutting down web server")
        server.stop(timeout=5)

    gevent.signal_handler(signal.SIGTERM, stop)
    gevent.signal_handler(signal.SIGINT, stop)
    shown = "127.0.0.1" if settings.host == "0.0.0.0" else settings.host
    log.info("serving on http://%s:%d", shown, settings.port)
    server.serve_forever()


if __name__ == "__main__":
    main()
