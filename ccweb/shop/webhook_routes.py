"""The payment provider's settlement callback (``POST /api/shop/webhook/settlement``).

No bearer token: the provider signs each callback (:func:`ccweb.shop.settlement.
verify_signature`). The signature is checked on the raw body *before* the body is parsed,
so an unsigned request learns nothing about our validation and changes nothing (401).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, Literal

from flask import Blueprint, request
from pydantic import Field

from ccweb.db import in_transaction
from ccweb.errors import DomainError
from ccweb.http.validation import MAX_ID, Schema, doc, validate
from ccweb.shop import settlement

bp = Blueprint("shop_webhook", __name__, url_prefix="/api/shop/webhook")


class SettlementCallbackBody(Schema):
    callback_id: str = Field(min_length=1, max_length=128, description="the provider's unique id")
    tx_id: int = Field(ge=1, le=MAX_ID, description="the purchase's tx_id")
    status: Literal["settled", "voided"]
    reason: str | None = Field(default=None, max_length=500)
    occurred_at: datetime | None = None


def signed_by_provider(view: Any) -> Any:
    """401 unless the settlement signature headers match the raw body. Every callback
    refused before the state machine saw it (signature, body, unknown or non-conversion
    purchase) counts as a ``rejected`` settlement; a refused transition is counted by
    the state machine itself (``refused``)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            settlement.verify_signature(
                request.get_data(cache=True),
                request.headers.get(settlement.TIMESTAMP_HEADER),
                request.headers.get(settlement.SIGNATURE_HEADER),
            )
            return view(*args, **kwargs)
        except settlement.InvalidTransition:
            raise
        except DomainError:
            settlement.count_rejected()
            raise

    return wrapper


@bp.post("/settlement")
@doc(
    "Settlement callback of the payment provider (HMAC-signed; no bearer token): settles or"
    " voids a conversion purchase exactly once",
    errors=(400, 401, 404, 409),
    tags=("shop",),
)
@signed_by_provider
@validate(body=SettlementCallbackBody)
def settlement_callback(body: SettlementCallbackBody) -> Any:
    payload = body.model_dump(mode="json", exclude_none=True)
    outcome = in_transaction(
        lambda s: settlement.apply(
            s, callback_id=body.callback_id, tx_id=body.tx_id, status=body.status, payload=payload
        )
    )
    if outcome.result == "refused":
        # recorded (committed) as not applied; the provider is told it was refused
        raise settlement.InvalidTransition(
            details={"tx_id": outcome.tx_id, "settlement_status": outcome.settlement_status}
        )
    return outcome.as_dict()
