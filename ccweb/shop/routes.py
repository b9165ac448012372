"""Player shop API (``/api/shop``): catalog, purchase, purchase history, receipt check."""

from __future__ import annotations

from flask import Blueprint, Response, request

from ccweb.auth.guard import auth_required
from ccweb.http.validation import doc
from ccweb.shop import catalog

bp = Blueprint("shop", __name__, url_prefix="/api/shop")


@bp.get("/catalog")
@doc(
    "Products on sale now (cached; stock_remaining null = unlimited; ETag /"
    " If-None-Match → 304)"
)
@auth_required
def get_catalog() -> Response:
    view = catalog.catalog()
    quoted = f'"{view.etag}"'
    headers = {"ETag": quoted, "Cache-Control": "private, no-cache"}
    if quoted in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return Response(status=304, headers=headers)
    return Response(view.body, status=200, mimetype="application/json", headers=headers)
