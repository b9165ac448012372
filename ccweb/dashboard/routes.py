"""``GET /api/dashboard`` and ``GET /api/profile``: cached per player, ETag / 304."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, g, request

from ccweb.auth.guard import auth_required
from ccweb.dashboard import service
from ccweb.dashboard.cache import cached_view
from ccweb.db import autocommit
from ccweb.http.validation import doc
from ccweb.streak.service import utc_today

bp = Blueprint("dashboard", __name__, url_prefix="/api")


def _respond(view: str, build: Callable[[Any], tuple[dict[str, Any], float | None]]) -> Response:
    today = utc_today()

    def render() -> tuple[dict[str, Any], float | None]:
        with autocommit() as conn:
            return build(conn)

    body, etag = cached_view(g.user_id, view, today.isoformat(), render)
    quoted = f'"{etag}"'
    headers = {"ETag": quoted, "Cache-Control": "private, no-cache"}
    if quoted in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return Response(status=304, headers=headers)
    return Response(body, status=200, mimetype="application/json", headers=headers)


@bp.get("/dashboard")
@doc("Everything the home screen needs in one call (ETag / If-None-Match → 304)")
@auth_required
def dashboard() -> Response:
    today = utc_today()
    return _respond("dashboard", lambda conn: service.dashboard(conn, g.user_id, today))


@bp.get("/profile")
@doc("Profile with level progress, stats, achievements and recent actions")
@auth_required
def profile() -> Response:
    return _respond("profile", lambda conn: service.profile(conn, g.user_id))
