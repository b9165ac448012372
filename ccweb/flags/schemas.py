"""Request and response models of the flag API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ccweb.http.validation import Schema
from ccweb.segments.models import LABELS
from ccweb.users.models import TIERS

KEY_PATTERN = r"^[a-z0-9_.-]{2,64}$"

Tier = Literal[TIERS]  # type: ignore[valid-type]
Segment = Literal[LABELS]  # type: ignore[valid-type]


class FlagIn(Schema):
    """``PUT /api/admin/flags/{key}``: the whole flag (omitted fields take defaults, not
    the stored values — except ``value_type``, ``description`` and ``client_visible``,
    which keep what is stored)."""

    value: Any = Field(description="checked against value_type")
    value_type: Literal["bool", "number", "string", "json"] | None = Field(
        default=None,
        description="a known flag's type is fixed; a new flag defaults to its value's type,"
        " an existing one keeps its type",
    )
    off_value: Any = Field(
        default=None,
        description="what players outside the targeting get (default: false for bool,"
        " absent otherwise)",
    )
    client_visible: bool | None = None
    description: str | None = Field(default=None, max_length=255)
    rollout_percent: int = Field(default=100, ge=0, le=100)
    target_tiers: list[Tier] | None = Field(default=None, max_length=len(TIERS))
    target_segments: list[Segment] | None = Field(default=None, max_length=len(LABELS))
    version: int | None = Field(
        default=None, ge=0, le=2**31 - 1, description="409 VERSION_CONFLICT unless current"
    )
