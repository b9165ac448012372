"""LiveOps tables.

Per-player rows keep ``progress`` as a bigint array aligned with the definition's
``requirements`` list. That alignment is why a definition's requirements cannot change
once players have rows for it (admin gets 409 ``IN_USE``): publish a new event or
mission and deactivate the old one instead, as live games version their content.

``status`` stores ``active`` → ``claimable`` → ``claimed``. "expired" is not stored: it
is derived from ``ends_at`` (events) or the period (missions) when read or claimed, so
it is exact without a sweeper job.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ccweb.db import Base

EVENT_TYPES = ("daily", "limited", "progression")
PERIODS = ("daily", "weekly")
ROW_STATUSES = ("active", "claimable", "claimed")


def _status_check() -> CheckConstraint:
    return CheckConstraint("status IN ('active', 'claimable', 'claimed')", name="status")


class LiveEvent(Base):
    __tablename__ = "live_events"
    __table_args__ = (
        CheckConstraint("type IN ('daily', 'limited', 'progression')", name="type"),
        CheckConstraint("ends_at > starts_at", name="window"),
        Index("ix_live_events_active_ends", "is_active", "ends_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    requirements: Mapped[Any] = mapped_column(JSONB)
    reward_items: Mapped[Any] = mapped_column(JSONB)
    tier_required: Mapped[str | None] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class EventParticipation(Base):
    __tablename__ = "event_participations"
    __table_args__ = (
        UniqueConstraint("user_id", "event_id"),
        _status_check(),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("live_events.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    progress: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    progress_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_progress_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Mission(Base):
    """A mission template; players get one row per period (day or ISO week)."""

    __tablename__ = "missions"
    __table_args__ = (CheckConstraint("period IN ('daily', 'weekly')", name="period"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(Text)
    period: Mapped[str] = mapped_column(String(8))
    requirements: Mapped[Any] = mapped_column(JSONB)
    reward_items: Mapped[Any] = mapped_column(JSONB)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    sort_order: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UserMission(Base):
    __tablename__ = "user_missions"
    __table_args__ = (
        # leads with (user_id, period_start): the worker's and the API's lookup
        UniqueConstraint("user_id", "period_start", "mission_id"),
        _status_check(),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    mission_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("missions.id", ondelete="CASCADE"), index=True
    )
    period_start: Mapped[date] = mapped_column(Date)  # the UTC day, or the Monday of the week
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    progress: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    progress_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_progress_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Achievement(Base):
    """A lifetime goal read from the player's game stats / streak (no per-event rows)."""

    __tablename__ = "achievements"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(Text)
    requirements: Mapped[Any] = mapped_column(JSONB)
    reward_items: Mapped[Any] = mapped_column(JSONB)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    sort_order: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UserAchievement(Base):
    __tablename__ = "user_achievements"

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    achievement_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("achievements.id", ondelete="CASCADE"), primary_key=True
    )
    unlocked_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UserItem(Base):
    """Inventory of non-gold reward items (``reward_items`` of type ``item``)."""

    __tablename__ = "user_items"

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    item_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
