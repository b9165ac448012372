"""Operator API for shop products (``/api/admin/products``): create, update, list, read;
every write is audited (:mod:`ccweb.shop.products`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g

from ccweb.auth.guard import auth_required
from ccweb.db import unit_of_work
from ccweb.http.validation import doc, validate
from ccweb.liveops.schemas import ContentQuery
from ccweb.shop import products
from ccweb.shop.schemas import ProductIn, ProductPatch

bp = Blueprint("shop_admin", __name__, url_prefix="/api/admin")


@bp.post("/products")
@doc("Create a shop product (sku unique: 409 DUPLICATE)", status=201, errors=(403, 409))
@auth_required(admin=True)
@validate(body=ProductIn)
def create_product(body: ProductIn) -> Any:
    with unit_of_work() as s:
        return products.create_product(s, admin_id=g.user_id, fields=body.fields()), 201


@bp.put("/products/<id:product_id>")
@doc(
    "Update a product: only the fields sent change (stock resets the total and the"
    " remaining stock; optional version → 409 VERSION_CONFLICT; sku cannot change)",
    errors=(403, 404, 409),
)
@auth_required(admin=True)
@validate(body=ProductPatch)
def update_product(product_id: int, body: ProductPatch) -> Any:
    with unit_of_work() as s:
        return products.update_product(
            s,
            admin_id=g.user_id,
            product_id=product_id,
            fields=body.changes(),
            version=body.version,
        )


@bp.get("/products")
@doc("Products with their sales (purchases, units), by sort order", errors=(403,))
@auth_required(admin=True)
@validate(query=ContentQuery)
def list_products(query: ContentQuery) -> Any:
    with unit_of_work() as s:
        return products.list_products(
            s, active=query.active, limit=query.limit, offset=query.offset
        )


@bp.get("/products/<id:product_id>")
@doc("One product with its sales", errors=(403, 404))
@auth_required(admin=True)
def get_product(product_id: int) -> Any:
    with unit_of_work() as s:
        return products.get_product(s, product_id)
