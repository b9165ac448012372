"""Response models of the streak API (documentation only; the service builds the dicts)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RewardOut(BaseModel):
    gold: int = Field(description="1000 + 200*(n-1), n = min(day_index, 30)")
    xp: int = Field(description="50 + 25*(n-1), n = min(day_index, 30)")


class ClaimOut(BaseModel):
    streak_count: int = Field(description="the streak after this claim (keeps growing past 30)")
    day_index: int = Field(description="the day this reward was paid for (= streak_count)")
    reward: RewardOut
    gold_balance: int
    level: int
    experience_points: int
    level_up: bool
    grace_used: bool = Field(description="true when this claim spent the grace for a missed day")


class StatusOut(BaseModel):
    count: int = Field(description="the effective streak; 0 when the next claim restarts at 1")
    claimed_today: bool
    next_reward: RewardOut = Field(description="what the next claim pays")
    grace_available: bool = Field(description="a missed day would be covered by a claim today")
