"""Admin request models."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ccweb.http.validation import MAX_ID, QuerySchema, Schema
from ccweb.wallet.ledger import MAX_ABS_DELTA


class GoldAdjustIn(Schema):
    delta: int = Field(ge=-MAX_ABS_DELTA, le=MAX_ABS_DELTA, description="non-zero gold change")
    reason: str = Field(min_length=3, max_length=255)


class UserSearchQuery(QuerySchema):
    q: str | None = Field(default=None, max_length=64)
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class AuditQuery(QuerySchema):
    limit: int = Field(default=50, ge=1, le=500)
    before_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    action: str | None = Field(default=None, max_length=64)


class FlagIn(Schema):
    value: Any
    client_visible: bool = False
    description: str | None = Field(default=None, max_length=255)
    rollout_percent: int = Field(default=100, ge=0, le=100)
    target_tiers: list[str] | None = None


class InviteCodeIn(Schema):
    code: str = Field(pattern=r"^[A-Za-z0-9_-]{3,32}$")
    max_uses: int | None = Field(default=None, ge=1, le=1_000_000)
