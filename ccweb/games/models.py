"""Game rounds, per-game stats, sessions and provably-fair seeds (one row per player)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ccweb.db import Base

GameType = Literal["slot", "gacha", "rps", "crash"]
GAME_TYPES: tuple[GameType, ...] = ("slot", "gacha", "rps", "crash")
_GAME_CHECK = "game_type IN ('slot', 'gacha', 'rps', 'crash')"


class FairnessSeed(Base):
    """The player's current (committed, unrevealed) server seed. ``nonce`` is the next
    nonce to use, i.e. the number of rounds already played with this seed."""

    __tablename__ = "fairness_seeds"

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    server_seed: Mapped[str] = mapped_column(String(64))
    server_seed_hash: Mapped[str] = mapped_column(String(64))
    client_seed: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RevealedSeed(Base):
    """A rotated-out seed, revealed so every round played with it can be recomputed."""

    __tablename__ = "fairness_revealed_seeds"
    __table_args__ = (Index("ix_fairness_revealed_seeds_user_id_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    server_seed: Mapped[str] = mapped_column(String(64))
    server_seed_hash: Mapped[str] = mapped_column(String(64))
    client_seed: Mapped[str] = mapped_column(String(64))
    rounds: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revealed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class GameStats(Base):
    """Per player and game: counters for /api/games/stats/me, plus the game's running
    state (the gacha pity counter)."""

    __tablename__ = "game_stats"
    __table_args__ = (CheckConstraint(_GAME_CHECK, name="game_type_valid"),)

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    game_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    total: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    wins: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    losses: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    draws: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    total_bet: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    total_payout: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    max_win: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    pity_counter: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class GameSession(Base):
    __tablename__ = "game_sessions"
    __table_args__ = (
        CheckConstraint(_GAME_CHECK, name="game_type_valid"),
        Index("ix_game_sessions_user_id_id", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    game_type: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rounds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    total_bet: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    total_payout: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class GameRound(Base):
    __tablename__ = "game_rounds"
    __table_args__ = (
        CheckConstraint(_GAME_CHECK, name="game_type_valid"),
        CheckConstraint("outcome IN ('win', 'lose', 'draw')", name="outcome_valid"),
        CheckConstraint("bet > 0 AND payout >= 0", name="amounts_valid"),
        Index("ix_game_rounds_user_id_id", "user_id", "id"),
        # time windows of the data-quality checks (rows are appended in time order, so a
        # BRIN index is tiny and enough)
        Index("ix_game_rounds_created_at_brin", "created_at", postgresql_using="brin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    game_type: Mapped[str] = mapped_column(String(16))
    session_id: Mapped[int | None] = mapped_column(BigInteger)
    bet: Mapped[int] = mapped_column(BigInteger)
    payout: Mapped[int] = mapped_column(BigInteger)
    outcome: Mapped[str] = mapped_column(String(8))
    server_seed_hash: Mapped[str] = mapped_column(String(64))
    client_seed: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[int] = mapped_column(BigInteger)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # GET /api/games/config?version=… (NULL: played before versions were recorded)
    config_version: Mapped[str | None] = mapped_column(Text)


class GameConfig(Base):
    """Every games-config document a round was played with, by version (immutable; see
    :mod:`ccweb.games.config_document`)."""

    __tablename__ = "game_configs"

    version: Mapped[str] = mapped_column(Text, primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
