"""Streak API (SPEC §3): claim the daily reward, read the streak status."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g

from ccweb.auth.guard import auth_required
from ccweb.db import autocommit
from ccweb.http.validation import doc
from ccweb.idempotency import service as idempotency
from ccweb.idempotency.service import idempotent
from ccweb.streak import service
from ccweb.streak.schemas import ClaimOut, StatusOut

bp = Blueprint("streak", __name__, url_prefix="/api/streak")


@bp.post("/claim")
@doc(
    "Claim today's (UTC) streak reward; a second claim the same day is 409 ALREADY_CLAIMED",
    response=ClaimOut,
    errors=(409,),
)
@auth_required
@idempotent
def claim() -> Any:
    today = service.utc_today()  # fixed once, so a retry cannot cross midnight
    return idempotency.transaction(lambda s: service.claim(s, g.user_id, today))


@bp.get("/status")
@doc("The effective streak, whether today is claimed, and the next reward", response=StatusOut)
@auth_required
def status() -> Any:
    with autocommit() as conn:
        return service.status(conn, g.user_id, service.utc_today())
