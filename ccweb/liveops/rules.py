"""Requirement and reward shapes, and the pure progress arithmetic.

A gameplay event becomes a :class:`Fact`: additive amounts (``plays``, ``wins``,
``spend_gold``, ``win_gold``) and level readings (``streak_days``: the streak count the
claim reached). A requirement counts a fact when its ``game_type`` filter (if any)
matches the fact's game. Definitions:

* ``plays`` +1 per round; ``wins`` +1 per round whose outcome is ``win``;
* ``spend_gold`` += the bet (and a shop purchase's ``price_gold``);
* ``win_gold`` += the payout of every round (gold paid back to the player, so it
  matches the ``total_payout`` of the game stats that achievements read);
* ``streak_days``: the highest streak count reached by a claim made after joining;
* ``max_win`` (achievements only): the biggest single payout.

Progress is stored capped at the target, so "10/10" never reads "13/10".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from ccweb import events

ADDITIVE = ("plays", "wins", "spend_gold", "win_gold")
LEVELS = ("streak_days",)
REQUIREMENT_TYPES = ADDITIVE + LEVELS
ACHIEVEMENT_ONLY = ("max_win",)
MAX_TARGET = 10**12
MAX_REWARD = 10**9


# Gameplay event types the worker's ``progress`` group turns into facts.
PROGRESS_EVENT_TYPES = frozenset({events.GAME_ROUND, events.STREAK_CLAIM, events.SHOP_PURCHASE})


@dataclass(frozen=True)
class Fact:
    """What one gameplay event contributes to a player's progress."""

    event_id: str
    user_id: int
    ts: datetime
    game_type: str | None = None
    amounts: Mapping[str, int] = field(default_factory=dict)  # added
    levels: Mapping[str, int] = field(default_factory=dict)  # max-ed


def fact_from_envelope(env: Mapping[str, Any]) -> Fact | None:
    """The fact of an envelope, or None when the event does not move progress. Raises
    ``ValueError``/``KeyError``/``TypeError`` on a malformed envelope (the worker then
    isolates and eventually dead-letters it)."""
    etype = env["event_type"]
    if etype not in PROGRESS_EVENT_TYPES:
        return None
    user_id = env["user_id"]
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise ValueError(f"bad user_id {user_id!r}")
    ts = events.parse_ts(env["ts"])
    p = env["payload"]
    if etype == events.GAME_ROUND:
        bet, payout, win = _int(p["bet"]), _int(p["payout"]), p["outcome"] == "win"
        return Fact(
            env["event_id"],
            user_id,
            ts,
            str(p["game_type"]),
            {"plays": 1, "wins": int(win), "spend_gold": bet, "win_gold": payout},
        )
    if etype == events.STREAK_CLAIM:
        return Fact(env["event_id"], user_id, ts, levels={"streak_days": _int(p["count"])})
    if p.get("status", "success") != "success":  # a refused purchase spent nothing
        return None
    price = _int(p.get("price_gold") or 0)
    return Fact(env["event_id"], user_id, ts, amounts={"spend_gold": price}) if price else None


def _int(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ValueError(f"bad amount {v!r}")
    return v


def counts(req: Mapping[str, Any], fact: Fact) -> bool:
    gt = req.get("game_type")
    return gt is None or gt == fact.game_type


def advance(
    requirements: Sequence[Mapping[str, Any]], progress: Sequence[int], facts: Iterable[Fact]
) -> list[int]:
    """New progress after ``facts`` (already filtered to the ones that may count)."""
    cur = [int(x) for x in progress]
    cur += [0] * (len(requirements) - len(cur))
    for fact in facts:
        for i, req in enumerate(requirements):
            if not counts(req, fact):
                continue
            rtype = req["type"]
            if rtype in fact.amounts:
                cur[i] += fact.amounts[rtype]
            elif rtype in fact.levels:
                cur[i] = max(cur[i], fact.levels[rtype])
    return [min(c, int(r["target"])) for c, r in zip(cur, requirements, strict=False)]


def complete(requirements: Sequence[Mapping[str, Any]], progress: Sequence[int]) -> bool:
    return all(int(p) >= int(r["target"]) for p, r in zip(progress, requirements, strict=True))


def progress_out(
    requirements: Sequence[Mapping[str, Any]], progress: Sequence[int] | None
) -> list[dict[str, Any]]:
    """SPEC shape ``[{type, game_type?, current, target}]``."""
    values = list(progress or [])
    out = []
    for i, req in enumerate(requirements):
        item = {"type": req["type"], "current": int(values[i]) if i < len(values) else 0}
        if req.get("game_type"):
            item["game_type"] = req["game_type"]
        item["target"] = int(req["target"])
        out.append(item)
    return out


def reward_totals(items: Sequence[Mapping[str, Any]]) -> tuple[int, int, dict[str, int]]:
    """``(gold, xp, {item code: quantity})`` of a reward list."""
    gold = sum(int(i["amount"]) for i in items if i["type"] == "gold")
    xp = sum(int(i["amount"]) for i in items if i["type"] == "xp")
    things: dict[str, int] = {}
    for i in items:
        if i["type"] == "item":
            things[i["code"]] = things.get(i["code"], 0) + int(i["amount"])
    return gold, xp, things


def period_start(period: str, day: date) -> date:
    """The first day of the mission period containing ``day`` (UTC; weeks start Monday)."""
    return day if period == "daily" else day - timedelta(days=day.weekday())


def period_end(period: str, start: date) -> date:
    """The first day after the period (the reset)."""
    return start + timedelta(days=1 if period == "daily" else 7)
