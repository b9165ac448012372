"""Reading accounts and shaping them for responses (no balance writes here)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ccweb import effects, events
from ccweb.errors import NotFound
from ccweb.events import iso

USER_COLUMNS = (
    "id, site_id, nickname, is_admin, is_active, tier, level, experience_points,"
    " gold_balance, created_at, password_hash"
)


def get_user(session: Session | Connection, user_id: int) -> dict[str, Any]:
    row = (
        session.execute(text(f"SELECT {USER_COLUMNS} FROM users WHERE id = :id"), {"id": user_id})
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFound("user not found", details={"user_id": user_id})
    return dict(row)


def find_by_site_id(session: Session | Connection, site_id: str) -> dict[str, Any] | None:
    row = (
        session.execute(
            text(f"SELECT {USER_COLUMNS} FROM users WHERE site_id = :s"), {"s": site_id}
        )
        .mappings()
        .one_or_none()
    )
    return dict(row) if row else None


def public_user(user: dict[str, Any]) -> dict[str, Any]:
    """The ``/api/auth/me`` shape."""
    return {
        "id": user["id"],
        "site_id": user["site_id"],
        "nickname": user["nickname"],
        "is_admin": user["is_admin"],
        "tier": user["tier"],
        "level": user["level"],
        "experience_points": user["experience_points"],
        "gold_balance": user["gold_balance"],
        "created_at": iso(user["created_at"]),
    }


def announce_level_up(session: Session, user_id: int, settled: Any, source: str) -> bool:
    """Emit ``user.level_up`` in the caller's transaction if a settlement
    (:class:`ccweb.wallet.ledger.Settlement`) raised the level; returns whether it did."""
    if settled.level <= settled.old_level:
        return False
    effects.emit(
        session,
        events.USER_LEVEL_UP,
        user_id,
        {
            "level": settled.level,
            "previous_level": settled.old_level,
            "experience_points": settled.experience_points,
            "source": source,
        },
    )
    return True
