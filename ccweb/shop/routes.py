"""Player shop API (``/api/shop``): catalog, purchase, purchase history, receipt check."""

from __future__ import annotations

from flask import Blueprint, Response

from ccweb.auth.guard import auth_required
from ccweb.http.validation import doc
from ccweb.shop import catalog

bp = Blueprint("shop", __name__, url_prefix="/api/shop")


@bp.get("/catalog")
@doc("Products on sale now (cached; stock_remaining null = unlimited)")
@auth_required
def get_catalog() -> Response:
    return Response(catalog.catalog_json(), status=200, mimetype="application/json")
