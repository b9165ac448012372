"""Request models of the operator API for LiveOps content (``/api/admin/events``, ...).

Create bodies mirror the read shapes (SPEC §3 "Admin"). Patch bodies take the same
fields, all optional; a field sent as ``null`` clears it where the column is nullable
(``description``, ``tier_required``) and is a 400 elsewhere. Events and missions also
take ``version`` for optimistic concurrency (409 ``VERSION_CONFLICT`` when stale).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, AwareDatetime, Field, model_validator

from ccweb.games.models import GameType
from ccweb.http.validation import QuerySchema, Schema
from ccweb.liveops.rules import MAX_REWARD, MAX_TARGET

RequirementType = Literal["plays", "wins", "spend_gold", "win_gold", "streak_days"]
AchievementRequirementType = Literal[
    "plays", "wins", "spend_gold", "win_gold", "streak_days", "max_win"
]


class Requirement(Schema):
    type: RequirementType
    game_type: GameType | None = None
    target: int = Field(ge=1, le=MAX_TARGET)

    @model_validator(mode="after")
    def _game_filter_applies(self) -> Requirement:
        if self.game_type is not None and self.type == "streak_days":
            raise ValueError("streak_days cannot be filtered by game_type")
        return self


class AchievementRequirement(Requirement):
    type: AchievementRequirementType  # type: ignore[assignment]


class RewardItem(Schema):
    type: Literal["gold", "xp", "item"]
    amount: int = Field(ge=1, le=MAX_REWARD)
    code: str | None = Field(
        default=None, pattern=r"^[a-z0-9_.-]{2,64}$", description="item code (type item)"
    )

    @model_validator(mode="after")
    def _code_only_for_items(self) -> RewardItem:
        if (self.type == "item") != (self.code is not None):
            raise ValueError("code is required for item rewards and only for them")
        return self


# Bounds keep every accepted instant representable after conversion to UTC (and in
# psycopg2's date parsing): "0001-01-01T00:00:00+05:00" would be year 0 in UTC.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
MAX_SORT = 1_000_000
MAX_VERSION = 2**31 - 1  # the column is an int4


def _in_range(value: datetime) -> datetime:
    # aware comparisons never overflow, unlike astimezone() on an extreme value
    if not EARLIEST <= value < LATEST:
        raise ValueError("must be between 2000-01-01T00:00:00Z and 2200-01-01T00:00:00Z")
    return value.astimezone(UTC)


Title = Annotated[str, Field(min_length=1, max_length=120, pattern=r"\S")]
Description = Annotated[str, Field(max_length=2000)]
Instant = Annotated[
    AwareDatetime,
    AfterValidator(_in_range),
    Field(description="ISO-8601 with a timezone, e.g. 2026-01-01T00:00:00Z"),
]
Requirements = Annotated[list[Requirement], Field(min_length=1, max_length=5)]
AchievementRequirements = Annotated[list[AchievementRequirement], Field(min_length=1, max_length=5)]
RewardItems = Annotated[list[RewardItem], Field(min_length=1, max_length=5)]
EventType = Literal["daily", "limited", "progression"]
Period = Literal["daily", "weekly"]
Tier = Literal["STANDARD", "PREMIUM", "VIP"]
SortOrder = Annotated[int, Field(ge=-MAX_SORT, le=MAX_SORT)]
Version = Annotated[int, Field(ge=1, le=MAX_VERSION, description="expected current version")]
ACHIEVEMENT_CODE = r"^[a-z0-9_]{2,64}$"


def window_ok(starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise ValueError("ends_at must be after starts_at")


class PatchSchema(Schema):
    """Partial update: only the fields present in the body change."""

    nullable: ClassVar[frozenset[str]] = frozenset()
    not_fields: ClassVar[frozenset[str]] = frozenset({"version"})

    @model_validator(mode="after")
    def _fields_present(self) -> Any:
        changed = self.model_fields_set - self.not_fields
        if not changed:
            raise ValueError("nothing to update: send at least one field")
        nulls = sorted(f for f in changed if getattr(self, f) is None and f not in self.nullable)
        if nulls:
            raise ValueError(f"cannot be null: {', '.join(nulls)}")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields sent (``version`` excluded), JSON-ready for JSONB columns."""
        data = self.model_dump(include=self.model_fields_set - self.not_fields)
        for key in ("requirements", "reward_items"):
            if data.get(key) is not None:
                data[key] = [item.model_dump(exclude_none=True) for item in getattr(self, key)]
        return data


def _create_fields(model: Schema) -> dict[str, Any]:
    data = model.model_dump()
    for key in ("requirements", "reward_items"):
        data[key] = [item.model_dump(exclude_none=True) for item in getattr(model, key)]
    return data


class EventIn(Schema):
    title: Title
    type: EventType
    starts_at: Instant
    ends_at: Instant
    requirements: Requirements
    reward_items: RewardItems
    description: Description | None = None
    tier_required: Tier | None = None
    is_active: bool = True

    @model_validator(mode="after")
    def _window(self) -> EventIn:
        window_ok(self.starts_at, self.ends_at)
        return self

    def fields(self) -> dict[str, Any]:
        return _create_fields(self)


class EventPatch(PatchSchema):
    nullable = frozenset({"description", "tier_required"})

    title: Title | None = None
    type: EventType | None = None
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    requirements: Requirements | None = None
    reward_items: RewardItems | None = None
    description: Description | None = None
    tier_required: Tier | None = None
    is_active: bool | None = None
    version: Version | None = None

    @model_validator(mode="after")
    def _window(self) -> EventPatch:
        window_ok(self.starts_at, self.ends_at)
        return self


class MissionIn(Schema):
    title: Title
    period: Period
    requirements: Requirements
    reward_items: RewardItems
    description: Description | None = None
    is_active: bool = True
    sort_order: SortOrder = 0

    def fields(self) -> dict[str, Any]:
        return _create_fields(self)


class MissionPatch(PatchSchema):
    nullable = frozenset({"description"})

    title: Title | None = None
    period: Period | None = None
    requirements: Requirements | None = None
    reward_items: RewardItems | None = None
    description: Description | None = None
    is_active: bool | None = None
    sort_order: SortOrder | None = None
    version: Version | None = None


class AchievementIn(Schema):
    code: str = Field(pattern=ACHIEVEMENT_CODE, description="stable identifier, unique")
    title: Title
    requirements: AchievementRequirements
    reward_items: RewardItems
    description: Description | None = None
    is_active: bool = True
    sort_order: SortOrder = 0

    def fields(self) -> dict[str, Any]:
        return _create_fields(self)


class AchievementPatch(PatchSchema):
    """``code`` is the achievement's identity and cannot change."""

    nullable = frozenset({"description"})

    title: Title | None = None
    requirements: AchievementRequirements | None = None
    reward_items: RewardItems | None = None
    description: Description | None = None
    is_active: bool | None = None
    sort_order: SortOrder | None = None


class ContentQuery(QuerySchema):
    active: bool | None = Field(default=None, description="filter on is_active")
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=1_000_000)
