"""Admin request models."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

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


class InviteCodeIn(Schema):
    code: str = Field(pattern=r"^[A-Za-z0-9_-]{3,32}$")
    max_uses: int | None = Field(default=None, ge=1, le=1_000_000)


class InviteCodeQuery(QuerySchema):
    active: bool | None = Field(default=None, description="filter on is_active")
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class InviteCodePatch(Schema):
    """Partial update; ``max_uses: null`` makes the code unlimited."""

    is_active: bool | None = None
    max_uses: int | None = Field(default=None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _something_to_change(self) -> InviteCodePatch:
        if not self.model_fields_set:
            raise ValueError("nothing to update: send is_active and/or max_uses")
        if "is_active" in self.model_fields_set and self.is_active is None:
            raise ValueError("is_active cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(include=self.model_fields_set)
