"""``@auth_required``: bearer token → ``g.user_id``, with admin and tier guards.

The token check is CPU only (JWT HS256) plus one Redis MGET for the denylist. Admin
and tier checks read the account from PostgreSQL, so demoting an admin or changing a
tier takes effect immediately rather than when the token expires.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, request

from ccweb.auth import tokens
from ccweb.db import autocommit
from ccweb.errors import Forbidden, Unauthorized
from ccweb.users.models import TIERS
from ccweb.users.service import get_user

F = TypeVar("F", bound=Callable[..., Any])


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token")
    return token.strip()


def authenticate(token: str) -> dict[str, Any]:
    """Validate an access token (signature, expiry, type, denylist) and return claims."""
    claims = tokens.decode(token, "access")
    tokens.check_not_revoked(claims)
    return claims


def auth_required(fn: F | None = None, *, admin: bool = False, tier: str | None = None) -> Any:
    if tier is not None and tier not in TIERS:
        raise ValueError(f"unknown tier {tier}")

    def deco(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            claims = authenticate(bearer_token())
            g.claims = claims
            g.user_id = int(claims["sub"])
            if admin or tier:
                with autocommit() as conn:
                    user = get_user(conn, g.user_id)
                if not user["is_active"]:
                    raise Unauthorized("account disabled")
                if admin and not user["is_admin"]:
                    raise Forbidden("admin only")
                if tier and TIERS.index(user["tier"]) < TIERS.index(tier):
                    raise Forbidden(f"requires tier {tier}", details={"tier_required": tier})
                g.user = user
            return view(*args, **kwargs)

        meta = dict(getattr(view, "__openapi__", {}))
        meta["auth"] = "admin" if admin else (tier or True)
        wrapper.__openapi__ = meta  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return deco(fn) if fn is not None else deco
