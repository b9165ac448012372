"""JWT access tokens, rotating refresh tokens and the denylist.

* Access tokens (15 min) carry ``jti`` and the refresh family id ``fam``; logout puts
  the jti on a Redis denylist until the token would expire anyway.
* Refresh tokens (14 days) are single use. Each is a row in ``refresh_tokens``; using
  one marks it used and issues the next one in the same family. Presenting a used one
  means it was stolen (or replayed): the whole family is revoked and the family id is
  denylisted, which also kills the access tokens issued from it.
* The denylist is answered from process memory (``ccweb.auth.denylist``), kept in sync
  across processes through Redis.
* Expiry is judged by :mod:`ccweb.clock` (PyJWT's own expiry check reads the system
  clock, so it is switched off and done here), and the refresh-token row's expiry is
  compared with the same instant in SQL.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from sqlalchemy import text
from sqlalchemy.orm import Session

from ccweb import clock
from ccweb.auth.denylist import denylist
from ccweb.config import get_settings
from ccweb.errors import TokenExpired, TokenRevoked, Unauthorized

ALGORITHM = "HS256"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
        }


def _encode(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, get_settings().jwt_secret, algorithm=ALGORITHM)


def issue_pair(
    session: Session, user_id: int, *, is_admin: bool, tier: str, family_id: uuid.UUID | None = None
) -> TokenPair:
    """New access + refresh token; a new family unless rotating within one."""
    s = get_settings()
    now = int(clock.time())
    family_id = family_id or uuid.uuid4()
    refresh_jti = uuid.uuid4()
    session.execute(
        text(
            "INSERT INTO refresh_tokens (jti, family_id, user_id, expires_at)"
            " VALUES (:jti, :fam, :uid, :exp)"
        ),
        {
            "jti": refresh_jti,
            "fam": family_id,
            "uid": user_id,
            "exp": datetime.fromtimestamp(now + s.refresh_token_ttl_s, UTC),
        },
    )
    access = _encode(
        {
            "sub": str(user_id),
            "jti": uuid.uuid4().hex,
            "fam": family_id.hex,
            "typ": "access",
            "adm": is_admin,
            "tier": tier,
            "iat": now,
            "exp": now + s.access_token_ttl_s,
        }
    )
    refresh = _encode(
        {
            "sub": str(user_id),
            "jti": refresh_jti.hex,
            "fam": family_id.hex,
            "typ": "refresh",
            "iat": now,
            "exp": now + s.refresh_token_ttl_s,
        }
    )
    return TokenPair(access, refresh, s.access_token_ttl_s)


# Tokens whose signature and claims were already checked, keyed by the exact token
# text (and the secret that checked it). PyJWT's parse + verify is ~7 % of a spin's web
# CPU; a player presents the same access token on every request for 15 minutes. Expiry
# is re-checked on every hit; revocation is checked by the caller every time. Bounded:
# cleared when full (a sweep every few thousand players is cheaper than LRU upkeep).
_VERIFIED: dict[tuple[str, str, str], dict[str, Any]] = {}
_VERIFIED_MAX = 20_000


def decode(token: str, typ: str) -> dict[str, Any]:
    secret = get_settings().jwt_secret
    cache_key = (secret, typ, token)
    claims = _VERIFIED.get(cache_key)
    if claims is not None:
        if claims["exp"] <= clock.time():
            _VERIFIED.pop(cache_key, None)
            raise TokenExpired()
        return dict(claims)
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={
                "require": ["exp", "iat", "sub", "jti", "typ"],
                "verify_exp": False,  # judged below by ccweb.clock
                "verify_iat": False,  # (PyJWT compares it with the system clock)
            },
        )
    except jwt.PyJWTError:
        raise Unauthorized("invalid token") from None
    if claims.get("typ") != typ:
        raise Unauthorized("wrong token type")
    if not isinstance(claims["exp"], int | float):
        raise Unauthorized("invalid token")
    if claims["exp"] <= clock.time():
        raise TokenExpired()
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[cache_key] = dict(claims)
    return claims


def check_not_revoked(claims: dict[str, Any]) -> None:
    if denylist().is_revoked(claims["jti"], claims.get("fam")):
        raise TokenRevoked()


def deny_access_token(claims: dict[str, Any]) -> None:
    """Revoke one access token until it would have expired anyway."""
    denylist().add("jti", claims["jti"], float(claims["exp"]) + 1)


def deny_family(family_hex: str) -> None:
    """Kill every access token of the family for as long as one can live."""
    denylist().add("fam", family_hex, clock.time() + get_settings().access_token_ttl_s + 5)


def revoke_family(session: Session, family_id: uuid.UUID) -> None:
    session.execute(
        text(
            "UPDATE refresh_tokens SET revoked_at = now()"
            " WHERE family_id = :fam AND revoked_at IS NULL"
        ),
        {"fam": family_id},
    )


SESSION_ENDED = "session_ended"
REUSE_DETECTED = "reuse_detected"


def spend_refresh_token(session: Session, claims: dict[str, Any]) -> tuple[int, uuid.UUID] | None:
    """Mark the refresh token used. Returns ``(user_id, family_id)``, or None when the
    token was used before (reuse: the caller revokes the family).

    A token that was never used but whose family was revoked — by logout, or by a reuse
    of one of its older tokens — is not a reuse: its holder did nothing wrong, the session
    simply ended. That is 401 ``TOKEN_REVOKED`` (SPEC §2: a revoked token) saying so, with
    ``details.reason = "session_ended"``, and nothing is written."""
    jti = uuid.UUID(hex=claims["jti"])
    now = clock.utcnow()
    row = session.execute(
        text(
            """
            UPDATE refresh_tokens SET used_at = now()
            WHERE jti = :jti AND used_at IS NULL AND revoked_at IS NULL AND expires_at > :now
            RETURNING user_id, family_id
            """
        ),
        {"jti": jti, "now": now},
    ).one_or_none()
    if row is not None:
        return int(row.user_id), row.family_id
    known = session.execute(
        text("SELECT expires_at, used_at FROM refresh_tokens WHERE jti = :jti"), {"jti": jti}
    ).one_or_none()
    if known is None:
        raise Unauthorized("unknown refresh token")
    if known.expires_at <= now:
        raise TokenExpired()
    if known.used_at is None:
        raise TokenRevoked(
            "this login session has ended (logged out or revoked); log in again",
            details={"reason": SESSION_ENDED},
        )
    return None
