"""Transactional outbox: events written in the same transaction as the domain change."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, SmallInteger, String, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from ccweb.db import Base

# The writing transaction's id (64-bit, epoch-extended), as bigint: the relay publishes
# rows of transactions that have all finished, in (txid, id) order, behind a cursor.
CURRENT_TXID = text("((pg_current_xact_id())::text)::bigint")


class OutboxEvent(Base):
    """One event per row. Rows are never updated: the relay's cursor
    (:class:`RelayCursor`) says which ones are behind it (published)."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_txid_id", "txid", "id"),
        # refused purchases exist only as events: admin stats counts today's
        Index(
            "ix_outbox_purchase_failed",
            "created_at",
            postgresql_where=text(
                "event_type = 'shop.purchase' AND (envelope -> 'payload' ->> 'status') = 'failed'"
            ),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # not UNIQUE: uuid4 ids, the Redis dedupe key and consumer-side dedupe cover it, and a
    # random-UUID btree insert on every event was a measurable share of a game round
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    event_type: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    partition: Mapped[int] = mapped_column(SmallInteger)
    envelope: Mapped[dict[str, Any]] = mapped_column(JSONB)
    txid: Mapped[int] = mapped_column(BigInteger, server_default=CURRENT_TXID)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RelayCursor(Base):
    """How far the relay has published: every row with (txid, id) <= (txid, last_id)."""

    __tablename__ = "outbox_relay_cursor"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    txid: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    last_id: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
