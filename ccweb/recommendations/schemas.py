"""Response shapes of ``GET /api/recommendations`` (documentation: the OpenAPI document)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class OfferOut(BaseModel):
    type: Literal["product", "mission", "event"]
    id: int = Field(description="the product, mission or event id")
    sku: str | None = Field(default=None, description="products only")
    title: str
    reason: str = Field(
        description="the rule that chose it: return_package, limited_package, top_package,"
        " mission_extension, value_package, entry_package, starter_package, join_event"
    )
    segment: str | None = Field(description="the segment whose rule chose it; null: fallback")
    cta: str = Field(description="short call to action")


class RecommendationsOut(BaseModel):
    segment: str | None = Field(description="the player's RFM label; null: no segment yet")
    result: Literal["ok", "fallback"] = Field(
        description="fallback: no segment, or nothing the segment's rules could offer now"
    )
    items: list[OfferOut] = Field(description="at most 3, best first")
