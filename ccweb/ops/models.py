"""Consumer-side bookkeeping: processed event ids (idempotent consumers) and the daily
activity table the ``activity`` consumer group maintains (DAU and friends)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, Index, Integer, String, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from ccweb.db import Base


class ProcessedEvent(Base):
    """One row per (consumer group, event id): redelivery of an event is a no-op."""

    __tablename__ = "processed_events"
    # BRIN: rows arrive in processed_at order, so a tiny range index lets the retention
    # prune find old rows without a btree insert per event
    __table_args__ = (
        Index("ix_processed_events_processed_at", "processed_at", postgresql_using="brin"),
    )

    consumer: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class UserDailyActivity(Base):
    __tablename__ = "user_daily_activity"
    # DAU (admin stats) counts one day's rows; the primary key leads with the player
    __table_args__ = (Index("ix_user_daily_activity_day", "day"),)

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    events: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_event_type: Mapped[str | None] = mapped_column(String(64))
    last_event_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
