"""Request models of the games API. Types are strict (``"5"`` or ``5.0`` is not a bet);
ranges and choices are then checked by the engines' own validators before any I/O."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ccweb.games.models import GameType
from ccweb.http.validation import MAX_ID, QuerySchema, Schema


class _Play(Schema):
    session_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="optional open session"
    )


class SpinIn(_Play):
    bet: int = Field(ge=1, description="whole gold, 1 ≤ bet ≤ max bet")


class GachaIn(_Play):
    count: int = Field(default=1, description="1 or 10 pulls; cost is fixed per pull")


class RpsIn(_Play):
    bet: int = Field(ge=1)
    choice: Literal["rock", "paper", "scissors"]


class CrashIn(_Play):
    bet: int = Field(ge=1)
    auto_cashout: float = Field(description="cash out automatically at this multiplier")


class RotateIn(Schema):
    client_seed: str | None = Field(default=None, min_length=1, max_length=64)


class SessionStartIn(Schema):
    game_type: GameType


class LimitQuery(QuerySchema):
    limit: int = Field(default=10, ge=1, le=100)


class ConfigQuery(QuerySchema):
    version: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{16}$",
        description="a round's config_version (16 lowercase hex digits); omit for the current",
    )
