"""The one mapping from domain events to the push messages a player sees (SPEC §3 Realtime).

Pushes are derived from the events the system already writes — never sent by a service
directly — so a change that commits is pushed (whichever process made it: a web request,
the worker's progress group, the relay after a crash) and one that rolls back is not.
A message is ``{type, user_id, data, timestamp}``; :mod:`realtime.history` adds ``seq``.
Events that a player need not see live (logins, session bookkeeping) map to nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from ccweb import events

Data = dict[str, Any]


def _pick(payload: Mapping[str, Any], *keys: str) -> Data:
    return {k: payload[k] for k in keys if k in payload}


def _round(p: Mapping[str, Any]) -> list[tuple[str, Data]]:
    out = [
        (
            "stats_update",
            _pick(
                p, "round_id", "game_type", "bet", "payout", "gold_delta", "outcome", "session_id"
            ),
        )
    ]
    if "gold_balance" in p:
        out.append(
            (
                "profile_update",
                {**_pick(p, "gold_balance", "experience_points", "level"), "cause": "game.round"},
            )
        )
    return out


def _streak(p: Mapping[str, Any]) -> list[tuple[str, Data]]:
    out = [("streak_update", _pick(p, "count", "day_index", "reward", "grace_used"))]
    if "gold_balance" in p:
        out.append(
            (
                "profile_update",
                {**_pick(p, "gold_balance", "experience_points", "level"), "cause": "streak.claim"},
            )
        )
    return out


def _reward(p: Mapping[str, Any]) -> list[tuple[str, Data]]:
    return [
        (
            "reward_granted",
            _pick(p, "source_type", "source_id", "reward_items", "gold_balance"),
        )
    ]


def _level_up(p: Mapping[str, Any]) -> list[tuple[str, Data]]:
    data = _pick(p, "level", "previous_level", "experience_points")
    return [("profile_update", {**data, "level_up": True, "cause": p.get("source")})]


def _admin(p: Mapping[str, Any]) -> list[tuple[str, Data]]:
    return [
        (
            "profile_update",
            {"gold_balance": p.get("balance_after"), "delta": p.get("delta"), "cause": "admin"},
        )
    ]


def _settlement(p: Mapping[str, Any]) -> list[tuple[str, Data]]:
    """A conversion settled or voided: the purchase's new state; when a void took gold
    back, the balance too (like every other change of it)."""
    out = [
        (
            "purchase_update",
            {
                **_pick(p, "tx_id", "gold_delta", "gold_balance", "unrecovered_gold"),
                "settlement_status": p.get("status"),
            },
        )
    ]
    if p.get("gold_delta"):
        out.append(
            ("profile_update", {**_pick(p, "gold_balance"), "cause": events.SHOP_SETTLEMENT})
        )
    return out


def _claimed(kind: str, key: str) -> Callable[[Mapping[str, Any]], list[tuple[str, Data]]]:
    return lambda p: [(kind, {key: p.get(key), "status": "claimed"})]


_MAP: dict[str, Callable[[Mapping[str, Any]], list[tuple[str, Data]]]] = {
    events.GAME_ROUND: _round,
    events.STREAK_CLAIM: _streak,
    events.REWARD_GRANTED: _reward,
    events.USER_LEVEL_UP: _level_up,
    events.ADMIN_ADJUST: _admin,
    events.EVENT_PROGRESS: lambda p: [("event_progress", _pick(p, "items"))],
    events.MISSION_PROGRESS: lambda p: [("mission_update", _pick(p, "items"))],
    events.EVENT_CLAIM: _claimed("event_progress", "event_id"),
    events.MISSION_CLAIM: _claimed("mission_update", "mission_id"),
    events.ACHIEVEMENT_UNLOCKED: lambda p: [
        (
            "achievement_progress",
            {**_pick(p, "achievement_id", "code", "title"), "status": "unlocked"},
        )
    ],
    events.USER_ACTION: lambda p: [
        ("user_action", _pick(p, "action_id", "action_type", "context"))
    ],
    events.SHOP_PURCHASE: lambda p: [("purchase_update", dict(p))],
    events.SHOP_SETTLEMENT: _settlement,
}

PUSHED_EVENT_TYPES = frozenset(_MAP)


def to_messages(envelope: Mapping[str, Any]) -> list[str]:
    """The push messages (JSON objects without ``seq``) of one event envelope, in order."""
    user_id = envelope.get("user_id")
    build = _MAP.get(envelope["event_type"])
    if build is None or not isinstance(user_id, int):
        return []
    return [
        json.dumps(
            {"type": kind, "user_id": user_id, "data": data, "timestamp": envelope["ts"]},
            separators=(",", ":"),
            default=str,
        )
        for kind, data in build(envelope["payload"])
    ]
