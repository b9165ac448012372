"""Auth endpoints (SPEC §3 Auth). Thin: parse, one unit of work, call the service."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g

from ccweb.auth import service
from ccweb.auth.guard import auth_required
from ccweb.auth.schemas import LoginIn, RefreshIn, SignupIn, TokenOut, UserOut
from ccweb.auth.tokens import REUSE_DETECTED
from ccweb.db import autocommit, in_transaction, unit_of_work
from ccweb.errors import TokenRevoked
from ccweb.http.validation import doc, validate
from ccweb.users.service import get_user, public_user

bp = Blueprint("auth", __name__, url_prefix="/api/auth")


@bp.post("/signup")
@doc(
    "Create an account (invite code required while signup.invite_required is on)",
    response=TokenOut,
    status=201,
    errors=(409,),
)
@validate(body=SignupIn)
def signup(body: SignupIn) -> Any:
    result = in_transaction(lambda s: service.signup(s, **body.model_dump()))
    return result, 201


@bp.post("/login")
@doc(
    "Log in; 5 failures in 10 minutes lock the account (429 LOGIN_LOCKED)",
    response=TokenOut,
    errors=(401, 429),
)
@validate(body=LoginIn)
def login(body: LoginIn) -> Any:
    return service.login(site_id=body.site_id, password=body.password)


@bp.post("/admin/login")
@doc("Admin-only login (non-admins get 403)", response=TokenOut, errors=(401, 403, 429))
@validate(body=LoginIn)
def admin_login(body: LoginIn) -> Any:
    return service.login(site_id=body.site_id, password=body.password, admin_only=True)


@bp.post("/refresh")
@doc(
    "Rotate a refresh token; reusing a spent one revokes its family (401 TOKEN_REVOKED,"
    " details.reason reuse_detected); one of a logged-out session gets 401 TOKEN_REVOKED"
    " with details.reason session_ended",
    response=TokenOut,
    errors=(401,),
)
@validate(body=RefreshIn)
def refresh(body: RefreshIn) -> Any:
    with unit_of_work() as s:
        result = service.refresh(s, body.refresh_token)
    if result is None:  # committed the family revocation first
        raise TokenRevoked(
            "refresh token reuse detected; all sessions of this login revoked",
            details={"reason": REUSE_DETECTED},
        )
    return result


@bp.post("/logout")
@doc("Revoke this access token and its refresh family", status=204)
@auth_required
def logout() -> Any:
    with unit_of_work() as s:
        service.logout(s, g.claims)
    return "", 204


@bp.get("/me")
@doc("The current account", response=UserOut)
@auth_required
def me() -> Any:
    with autocommit() as conn:
        return public_user(get_user(conn, g.user_id))
