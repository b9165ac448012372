"""Player shop API (``/api/shop``): catalog, purchase, purchase history, receipt check."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, g, request
from pydantic import Field

from ccweb.auth.guard import auth_required
from ccweb.db import autocommit
from ccweb.http.validation import MAX_ID, QuerySchema, Schema, doc, validate
from ccweb.shop import catalog, history, purchase

MAX_QUANTITY = 100

bp = Blueprint("shop", __name__, url_prefix="/api/shop")


@bp.get("/catalog")
@doc("Products on sale now (cached; stock_remaining null = unlimited; ETag / If-None-Match → 304)")
@auth_required
def get_catalog() -> Response:
    view = catalog.catalog()
    quoted = f'"{view.etag}"'
    headers = {"ETag": quoted, "Cache-Control": "private, no-cache"}
    if quoted in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return Response(status=304, headers=headers)
    return Response(view.body, status=200, mimetype="application/json", headers=headers)


class PurchaseIn(Schema):
    product_id: int = Field(ge=1, le=MAX_ID)
    idempotency_key: str = Field(
        min_length=1, max_length=128, description="one per purchase intent; reuse it on retry"
    )
    quantity: int = Field(default=1, ge=1, le=MAX_QUANTITY)


class PurchasesQuery(QuerySchema):
    limit: int = Field(default=20, ge=1, le=100)
    before_id: int | None = Field(default=None, ge=1, le=MAX_ID)


@bp.post("/purchase")
@doc(
    "Buy a product once per idempotency_key (repeat → the original response with"
    " Idempotent-Replay: true; same key still running → 409 IN_PROGRESS)",
    errors=(403, 404, 409, 429),
)
@auth_required
@validate(body=PurchaseIn)
def buy(body: PurchaseIn) -> Response:
    outcome = purchase.purchase(g.user_id, body.product_id, body.idempotency_key, body.quantity)
    resp = Response(json.dumps(outcome.body), status=200, mimetype="application/json")
    if outcome.replayed:
        resp.headers["Idempotent-Replay"] = "true"
    return resp


@bp.get("/purchases")
@doc("The player's purchases with their receipts, newest first")
@auth_required
@validate(query=PurchasesQuery)
def purchases(query: PurchasesQuery) -> Any:
    with autocommit() as conn:
        return {"items": history.purchases_of(conn, g.user_id, query.limit, query.before_id)}
