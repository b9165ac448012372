"""The payment provider's settlement callback (``POST /api/shop/webhook/settlement``)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("shop_webhook", __name__, url_prefix="/api/shop/webhook")
