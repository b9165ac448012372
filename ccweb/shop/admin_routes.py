"""Operator API for shop products (``/api/admin/products``)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("shop_admin", __name__, url_prefix="/api/admin")
