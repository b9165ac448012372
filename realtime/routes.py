"""``GET /api/realtime/sync`` (WebSocket, flask-sock) and ``GET /api/realtime/stream``
(Server-Sent Events): two transports around one :class:`realtime.session.Session`.

WebSocket: token from ``?token=`` or ``Authorization: Bearer``; resume with
``?since=<seq>&epoch=<epoch>``. A token problem closes the socket with code 4401 and the
error code as reason (``UNAUTHORIZED``, ``TOKEN_EXPIRED``, ``TOKEN_REVOKED``). The
heartbeat is a protocol-level ping every ``CC_WS_HEARTBEAT_S`` (simple-websocket's
``ping_interval``): a peer that has not answered the previous ping when the next is due is
closed. A reader thread (a greenlet under gevent) turns client frames and the client
leaving into items of the connection's queue, so the handler — which waits on that
queue — ends as soon as the client goes (PERFORMANCE.md trap 4) and unregisters in
``finally``. flask-sock duplicates the socket: 2 file descriptors per connection (trap 3).

SSE: same messages as ``data:`` lines with ``id: <seq>`` on pushes; ``Last-Event-ID`` (or
``?since=``) with ``?epoch=`` resumes; a comment line every heartbeat keeps proxies from
closing it and finds dead peers (a client that left is noticed at the next write, the
heartbeat at the latest: SSE has no reader). SSE cannot carry a refresh: at token expiry the stream
sends ``{"type":"closed","data":{"code":4401,"reason":"TOKEN_EXPIRED"}}`` and ends; the
client reconnects with a new token and its ``Last-Event-ID``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed

from ccweb.config import get_settings
from ccweb.errors import Unauthorized, ValidationFailed
from ccweb.http.validation import doc
from ccweb.metrics import WS_ACTIVE
from realtime.hub import CLIENT, GONE, get_hub
from realtime.session import Closed, Gone, Session, authenticate

log = logging.getLogger(__name__)
bp = Blueprint("realtime", __name__, url_prefix="/api/realtime")
sock = Sock()
MAX_CLIENT_MESSAGE = 16 * 1024  # a refresh message is a few hundred bytes


def init_app(app: Flask) -> None:
    """Register the blueprint and the WebSocket options (heartbeat, message size)."""
    settings = app.extensions["cc_settings"]
    app.config["SOCK_SERVER_OPTIONS"] = {
        "ping_interval": settings.ws_heartbeat_s,
        "max_message_size": MAX_CLIENT_MESSAGE,
    }
    sock.init_app(app)
    app.register_blueprint(bp)


def _token() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.args.get("token") or None


def _position(since_text: str | None) -> tuple[int | None, str | None]:
    epoch = request.args.get("epoch") or None
    if since_text is None or since_text == "":
        return None, epoch
    try:
        since = int(since_text)
    except ValueError:
        raise ValidationFailed("since must be an integer") from None
    if since < 0:
        raise ValidationFailed("since must be >= 0")
    return since, epoch


def _shutdown(conn: socket.socket | None) -> None:
    if conn is not None:
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)


@sock.route("/sync", bp=bp)
@doc(
    "WebSocket (upgrade): sync_connected, initial_state, then the player's pushes; "
    "?token= or Bearer, ?since=&epoch= to resume; token problems close with 4401",
    status=101,
    tags=("realtime",),
)
def sync(ws: Any) -> None:
    settings = get_settings()
    session: Session | None = None
    WS_ACTIVE.labels(transport="websocket").inc()
    try:
        try:
            claims = authenticate(_token())
            since, epoch = _position(request.args.get("since"))
        except ValidationFailed as exc:
            raise Closed(1008, exc.message) from None
        session = Session(get_hub(), claims, settings, lambda: _shutdown(ws.sock))
        _start_reader(ws, session)
        session.open(since, epoch)
        while True:
            for text, _seq in session.take():
                ws.send(text)
            session.step()
    except Closed as exc:
        with contextlib.suppress(Exception):
            for text, _seq in session.take() if session else []:
                ws.send(text)
            ws.close(reason=exc.code, message=exc.reason)
    except (Gone, ConnectionClosed, OSError):
        pass
    finally:
        WS_ACTIVE.labels(transport="websocket").dec()
        if session is not None:
            session.close()
        ws.event.set()  # wake the reader if it still waits


def _start_reader(ws: Any, session: Session) -> None:
    """Client frames and the client's departure → the session's queue."""
    q = session.sub.queue

    def read() -> None:
        try:
            while True:
                data = ws.receive()
                if data is None:
                    if not ws.connected:
                        break
                    continue
                with contextlib.suppress(Exception):
                    q.put_nowait((CLIENT, data))
        except ConnectionClosed:
            pass
        except Exception:
            log.debug("realtime reader ended", exc_info=True)
        with contextlib.suppress(Exception):
            q.put_nowait((GONE,))

    threading.Thread(target=read, name="rt-reader", daemon=True).start()


@bp.get("/stream")
@doc(
    "Server-Sent Events: the same messages, id = seq; Last-Event-ID + ?epoch= resumes",
    errors=(401,),
    tags=("realtime",),
)
def stream() -> Response:
    settings = get_settings()
    try:
        claims = authenticate(_token())
    except Closed as exc:
        raise Unauthorized(code=exc.reason) from None
    since, epoch = _position(request.headers.get("Last-Event-ID") or request.args.get("since"))
    raw = getattr(request.environ.get("wsgi.input"), "socket", None)
    session = Session(get_hub(), claims, settings, lambda: _shutdown(raw))
    WS_ACTIVE.labels(transport="sse").inc()
    try:
        session.open(since, epoch)
    except BaseException:
        WS_ACTIVE.labels(transport="sse").dec()
        session.close()
        raise

    def frames() -> Iterator[bytes]:
        try:
            while True:
                chunk = "".join(
                    (f"id: {seq}\n" if seq is not None else "") + f"data: {text}\n\n"
                    for text, seq in session.take()
                )
                if chunk:
                    yield chunk.encode()
                if session.step():
                    yield b": ping\n\n"
        except Closed as exc:
            last = {"type": "closed", "data": {"code": exc.code, "reason": exc.reason}}
            yield f"data: {json.dumps(last, separators=(',', ':'))}\n\n".encode()
        except Gone:
            pass
        finally:
            WS_ACTIVE.labels(transport="sse").dec()
            session.close()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(frames(), mimetype="text/event-stream", headers=headers)
