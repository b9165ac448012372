"""``GET /play`` (the client's one HTML page) and ``GET /play/static/<path>`` (its CSS and
ES modules), served from this package's ``static/`` folder with no build step.

Why these headers: the files have no content hash in their names, so a long ``max-age``
would keep a browser on old modules after a deploy; ``no-cache`` with the ETag Flask
computes makes every load a cheap conditional request (304 when unchanged). Module
scripts are refused by browsers unless served with a JavaScript type, whatever the
platform's ``mimetypes`` table says, so the type is set here. The page uses only its own
scripts and styles and talks only to this origin (HTTP and WebSocket), which the Content
Security Policy states, so an injected script or a stray inline handler does not run.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

bp = Blueprint("play", __name__, url_prefix="/play")


def _send(path: str) -> Response:
    resp = send_from_directory(STATIC, path, max_age=0, conditional=True)
    mimetype = TYPES.get(Path(path).suffix)
    if mimetype is not None:
        resp.headers["Content-Type"] = mimetype
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@bp.get("")
@bp.get("/")
def index() -> Response:
    resp = _send("index.html")
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


@bp.get("/static/<path:path>")
def static_file(path: str) -> Response:
    return _send(path)
