"""Signup, login (with lockout), refresh rotation and logout."""

from __future__ import annotations

import uuid
from typing import Any, NoReturn

from limits import RateLimitItem
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ccweb import events, ratelimit
from ccweb.auth import tokens
from ccweb.auth.passwords import hash_password, needs_rehash, verify_password
from ccweb.config import get_settings
from ccweb.db import autocommit, unit_of_work
from ccweb.effects import emit
from ccweb.errors import Duplicate, Forbidden, InvalidCredentials, LoginLocked, ValidationFailed
from ccweb.flags import service as flags
from ccweb.metrics import AUTH_LOGIN_FAIL, AUTH_LOGIN_LOCKED
from ccweb.users.service import USER_COLUMNS, find_by_site_id, get_user, public_user
from ccweb.wallet import ledger


def _login_item() -> RateLimitItem:
    """Failed-login counter per site_id: a moving window in Redis (:mod:`ccweb.ratelimit`)."""
    s = get_settings()
    return ratelimit.per_window(s.login_max_failures, s.login_lock_window_s)


def _session_response(session: Session, user: dict[str, Any]) -> dict[str, Any]:
    pair = tokens.issue_pair(session, user["id"], is_admin=user["is_admin"], tier=user["tier"])
    return {**pair.as_dict(), "user": public_user(user)}


def grant_signup_bonus(session: Session, user_id: int) -> None:
    """The starting gold is a ledger row (once per user), so the ledger explains it."""
    grant = flags.value("signup.grant_gold")
    if grant > 0:
        ledger.apply(
            session,
            user_id=user_id,
            delta=grant,
            source_type="signup",
            source_id=user_id,
            reason="signup bonus",
            idempotency_key=f"signup:{user_id}",
        )


def signup(
    session: Session, *, site_id: str, nickname: str, password: str, invite_code: str | None
) -> dict[str, Any]:
    """Create the account, grant the signup gold through the ledger, emit auth.signup."""
    # Hash first: the invite code's row stays locked from its UPDATE to the commit, and
    # argon2 (tens of ms by design) inside that window made every signup with the same
    # code wait for the ones before it (signups 503'd under load in bench/pipeline.py).
    password_hash = hash_password(password)
    if flags.value("signup.invite_required"):
        used = session.execute(
            text(
                """
                UPDATE invite_codes SET uses = uses + 1
                WHERE code = :code AND is_active AND (max_uses IS NULL OR uses < max_uses)
                RETURNING id
                """
            ),
            {"code": invite_code or ""},
        ).one_or_none()
        if used is None:
            raise ValidationFailed(
                "invite code is missing, unknown or used up",
                details={
                    "fields": [
                        {
                            "field": "invite_code",
                            "message": "invalid invite code",
                            "type": "invite_code",
                        }
                    ]
                },
            )
    try:
        with session.begin_nested():
            user_id = session.execute(
                text(
                    """
                    INSERT INTO users (site_id, nickname, password_hash, invite_code)
                    VALUES (:site_id, :nickname, :pw, :invite) RETURNING id
                    """
                ),
                {
                    "site_id": site_id,
                    "nickname": nickname,
                    "pw": password_hash,
                    "invite": invite_code,
                },
            ).scalar_one()
    except IntegrityError as exc:
        field = "nickname" if "uq_users_nickname" in str(exc.orig) else "site_id"
        raise Duplicate(f"{field} already taken", details={"field": field}) from None
    grant_signup_bonus(session, user_id)
    # no site_id or nickname: events travel to Kafka and ClickHouse, where players are
    # their user_id only (seed 002 §10: collect no names)
    emit(session, events.AUTH_SIGNUP, user_id, {"invite_code": invite_code})
    return _session_response(session, get_user(session, user_id))


def login(*, site_id: str, password: str, admin_only: bool = False) -> dict[str, Any]:
    """Check the password, then record the login and issue tokens in one transaction.

    The password is checked outside any transaction: argon2 costs tens of ms of CPU by
    design (more on a busy box), and a pooled connection held idle-in-transaction across
    it let a burst of logins take the whole pool, so every other request of that process
    waited the pool's 1 s and answered 503 (500 players, loadtests/RESULTS.md). The
    account is read again, locked, in the transaction, so a password change or a
    deactivation committed meanwhile is not overridden by a stale read (the recording
    statement only matches the hash that was verified).
    """
    limiter, item, ident = ratelimit.limiter(), _login_item(), site_id.lower()
    if not limiter.test(item, ident):
        AUTH_LOGIN_FAIL.labels(reason="locked").inc()
        raise LoginLocked(ratelimit.retry_after_s(item, ident))
    with autocommit() as conn:
        user = find_by_site_id(conn, site_id)
    ok = verify_password(user["password_hash"] if user else None, password)
    if not ok or user is None or not user["is_active"]:
        _failed(
            limiter,
            item,
            ident,
            "unknown_user" if user is None else "bad_password" if not ok else "disabled",
        )
    limiter.clear(item, ident)
    if admin_only and not user["is_admin"]:
        AUTH_LOGIN_FAIL.labels(reason="not_admin").inc()
        raise Forbidden("admin account required")
    rehashed = hash_password(password) if needs_rehash(user["password_hash"]) else None
    with unit_of_work() as session:
        # the row lock and the current values in the statement that records the login
        current = (
            session.execute(
                text(
                    "UPDATE users SET last_login_at = now(),"
                    " password_hash = coalesce(:rehashed, password_hash)"
                    " WHERE id = :id AND password_hash = :verified"
                    f" RETURNING {USER_COLUMNS}"
                ),
                {"id": user["id"], "verified": user["password_hash"], "rehashed": rehashed},
            )
            .mappings()
            .one_or_none()
        )
        if current is None or not current["is_active"]:
            # changed while we verified: the verified hash is no longer the account's, or
            # the account was disabled (the rollback undoes this statement)
            _failed(limiter, item, ident, "disabled" if current is not None else "bad_password")
        emit(session, events.AUTH_LOGIN, user["id"], {"admin": admin_only})
        return _session_response(session, dict(current))


def _failed(limiter: Any, item: RateLimitItem, ident: str, reason: str) -> NoReturn:
    """Count a failed login and refuse it (401, the same answer whatever the reason)."""
    AUTH_LOGIN_FAIL.labels(reason=reason).inc()
    # the failure that fills the window begins a lockout (one Redis call more, on
    # failures only); a concurrent failure that found it full already counts none
    if limiter.hit(item, ident) and not limiter.test(item, ident):
        AUTH_LOGIN_LOCKED.inc()
    raise InvalidCredentials()


def refresh(session: Session, refresh_token: str) -> dict[str, Any] | None:
    """Rotate. Returns None on reuse of a spent token, after revoking the family in this
    transaction (the caller commits, then answers 401 TOKEN_REVOKED). A token whose
    session already ended (logout) raises 401 TOKEN_REVOKED saying so, and changes
    nothing."""
    claims = tokens.decode(refresh_token, "refresh")
    spent = tokens.spend_refresh_token(session, claims)
    if spent is None:
        family = uuid.UUID(hex=claims["fam"])
        tokens.revoke_family(session, family)
        tokens.deny_family(family.hex)
        return None
    user_id, family_id = spent
    user = get_user(session, user_id)
    if not user["is_active"]:
        raise InvalidCredentials("account disabled")
    pair = tokens.issue_pair(
        session, user_id, is_admin=user["is_admin"], tier=user["tier"], family_id=family_id
    )
    return {**pair.as_dict(), "user": public_user(user)}


def logout(session: Session, claims: dict[str, Any]) -> None:
    tokens.deny_access_token(claims)
    if claims.get("fam"):
        tokens.revoke_family(session, uuid.UUID(hex=claims["fam"]))
        tokens.deny_family(claims["fam"])
