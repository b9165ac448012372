"""Receipt check for players and support (``POST /api/shop/receipts/verify``).

Anyone holding a receipt (the purchase response, ``GET /api/shop/purchases``) can ask
whether it is intact and was signed by us: ``integrity_ok`` (the hash is the receipt's),
``signature_ok`` (our key of that version signed that hash) and ``key_state`` (``current``
/ ``previous``; null once the version is retired or was never ours). Only the verdict is
returned — never a key, never a correct hash for a forged receipt.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from pydantic import Field

from ccweb.auth.guard import auth_required
from ccweb.http.validation import Schema, doc, validate
from ccweb.shop import receipts

bp = Blueprint("shop_receipts", __name__, url_prefix="/api/shop/receipts")


class VerifyReceiptBody(Schema):
    receipt: dict[str, Any]
    integrity_hash: str = Field(min_length=1, max_length=128)
    signature: str = Field(min_length=1, max_length=256)
    signature_version: int = Field(ge=1, le=2**31 - 1)  # signing_keys.version is an integer


@bp.post("/verify")
@doc(
    "Verify a purchase receipt: {valid, integrity_ok, signature_ok, key_state}",
    errors=(400, 401),
    tags=("shop",),
)
@auth_required
@validate(body=VerifyReceiptBody)
def verify_receipt(body: VerifyReceiptBody) -> Any:
    return receipts.verify(
        body.receipt, body.integrity_hash, body.signature, body.signature_version
    ).as_dict()
