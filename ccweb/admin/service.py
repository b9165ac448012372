"""Operator actions. Every write records an audit row in the same transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ccweb import effects, events
from ccweb.admin import audit
from ccweb.errors import Duplicate, NotFound, ValidationFailed
from ccweb.events import iso
from ccweb.users.service import get_user, public_user
from ccweb.wallet import ledger


def search_users(session: Session, q: str | None, limit: int, offset: int) -> dict[str, Any]:
    pattern = f"%{q}%" if q else None
    where = "WHERE (CAST(:p AS text) IS NULL OR site_id ILIKE :p OR nickname ILIKE :p)"
    rows = session.execute(
        text(
            f"SELECT id, site_id, nickname, is_admin, tier, level, experience_points,"
            f" gold_balance, created_at FROM users {where} ORDER BY id LIMIT :limit OFFSET :off"
        ),
        {"p": pattern, "limit": limit, "off": offset},
    ).mappings()
    total = session.execute(text(f"SELECT count(*) FROM users {where}"), {"p": pattern}).scalar()
    return {"items": [public_user(dict(r)) for r in rows], "total": int(total or 0)}


def user_detail(session: Session, user_id: int) -> dict[str, Any]:
    user = public_user(get_user(session, user_id))
    ledger_sum = session.execute(
        text("SELECT coalesce(sum(delta_gold), 0) FROM wallet_ledger WHERE user_id = :u"),
        {"u": user_id},
    ).scalar()
    user["ledger_sum"] = int(ledger_sum or 0)
    user["recent_ledger"] = [
        {**r, "created_at": iso(r["created_at"])} for r in ledger.history(session, user_id, 10)
    ]
    return user


def adjust_gold(
    session: Session,
    *,
    admin_id: int,
    user_id: int,
    delta: int,
    reason: str,
    request_key: str | None,
) -> dict[str, Any]:
    """Admin gold change through the ledger. With an idempotency key, a retried request
    maps to the same ledger key and cannot apply twice."""
    if delta == 0:
        raise ValidationFailed("delta must not be zero", details={"field": "delta"})
    ledger_key = f"admin:{admin_id}:{request_key or uuid.uuid4().hex}"
    result = ledger.apply(
        session,
        user_id=user_id,
        delta=delta,
        source_type="admin",
        source_id=admin_id,
        reason=reason,
        idempotency_key=ledger_key,
        meta={"admin_id": admin_id},
    )
    if not result.replayed:
        effects.of(session).touch(user_id)
        audit.record(
            session,
            admin_id,
            "user.gold_adjust",
            "user",
            user_id,
            {
                "delta": delta,
                "reason": reason,
                "entry_id": result.entry_id,
                "balance_after": result.balance,
            },
        )
        effects.emit(
            session,
            events.ADMIN_ADJUST,
            user_id,
            {
                "admin_id": admin_id,
                "delta": delta,
                "reason": reason,
                "balance_after": result.balance,
                "entry_id": result.entry_id,
            },
            dedupe_key=ledger_key,
        )
    return {
        "user_id": user_id,
        "delta": delta,
        "gold_balance": result.balance,
        "entry_id": result.entry_id,
        "reason": reason,
    }


def create_invite_code(
    session: Session, *, admin_id: int, code: str, max_uses: int | None
) -> dict[str, Any]:
    try:
        with session.begin_nested():
            row = (
                session.execute(
                    text(
                        "INSERT INTO invite_codes (code, max_uses, created_by) VALUES"
                        " (:c, :m, :a) RETURNING id, code, max_uses, uses, is_active, created_at"
                    ),
                    {"c": code, "m": max_uses, "a": admin_id},
                )
                .mappings()
                .one()
            )
    except IntegrityError:
        raise Duplicate("invite code exists", details={"code": code}) from None
    audit.record(
        session,
        admin_id,
        "invite_code.create",
        "invite_code",
        row["id"],
        {"code": code, "max_uses": max_uses},
    )
    return {**row, "created_at": iso(row["created_at"])}


_INVITE_COLUMNS = "id, code, max_uses, uses, is_active, created_by, created_at"


def list_invite_codes(
    session: Session, *, active: bool | None, limit: int, offset: int
) -> dict[str, Any]:
    rows = session.execute(
        text(
            f"SELECT {_INVITE_COLUMNS} FROM invite_codes"
            " WHERE (CAST(:active AS boolean) IS NULL OR is_active = :active)"
            " ORDER BY id DESC LIMIT :limit OFFSET :offset"
        ),
        {"active": active, "limit": limit, "offset": offset},
    ).mappings()
    return {"items": [{**r, "created_at": iso(r["created_at"])} for r in rows]}


def update_invite_code(
    session: Session, *, admin_id: int, code_id: int, fields: dict[str, Any]
) -> dict[str, Any]:
    """Change ``is_active`` / ``max_uses`` (a limit below ``uses`` just closes the code)."""
    allowed = {k: v for k, v in fields.items() if k in ("is_active", "max_uses")}
    if not allowed:
        raise ValidationFailed("nothing to update")
    sets = ", ".join(f"{k} = :{k}" for k in allowed)
    row = (
        session.execute(
            text(f"UPDATE invite_codes SET {sets} WHERE id = :id RETURNING {_INVITE_COLUMNS}"),
            {**allowed, "id": code_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound("invite code not found", details={"id": code_id})
    audit.record(session, admin_id, "invite_code.update", "invite_code", code_id, allowed)
    return {**row, "created_at": iso(row["created_at"])}
