"""What a flag's value may be and who gets it: pure functions (no database, no Redis).

A flag has a declared type — ``bool``, ``number``, ``string`` or ``json`` — checked on
every write (:func:`check_value`), so a typo in the admin console (``"false"`` for a
boolean, ``"10"`` for a number) is a 400 instead of a behaviour change.

Targeting (:func:`applies`): a player gets ``value`` when their tier is in
``target_tiers`` and their RFM segment in ``target_segments`` (an empty or missing list
means everyone) and their rollout bucket is below ``rollout_percent``; everyone else
gets the flag's off value (:func:`off_value`). The bucket is a hash of (flag key, player
id) in 0..9999, so it is fixed for a player: raising the percentage only adds players,
never swaps who is in, and different flags pick independent populations.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

VALUE_TYPES = ("bool", "number", "string", "json")
MAX_STRING = 1000
MAX_JSON_BYTES = 16 * 1024
BUCKETS = 10_000  # rollout granularity: 0.01 %


@dataclass(frozen=True)
class Flag:
    key: str
    value: Any
    value_type: str
    off_value: Any = None
    client_visible: bool = False
    description: str | None = None
    rollout_percent: int = 100
    target_tiers: tuple[str, ...] = ()
    target_segments: tuple[str, ...] = ()
    version: int = 0
    updated_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Flag:
        return cls(
            key=row["key"],
            value=row["value"],
            value_type=row["value_type"],
            off_value=row["off_value"],
            client_visible=bool(row["client_visible"]),
            description=row["description"],
            rollout_percent=row["rollout_percent"],
            target_tiers=tuple(row["target_tiers"] or ()),
            target_segments=tuple(row["target_segments"] or ()),
            version=row["version"],
            updated_at=row["updated_at"],
        )

    @property
    def targeted(self) -> bool:
        return bool(self.target_tiers or self.target_segments) or self.rollout_percent < 100


def type_of(value: Any) -> str:
    """The type a new flag gets when the writer names none: its JSON value's type."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "json"


def check_value(value_type: str, value: Any) -> str | None:
    """Why ``value`` is not a valid ``value_type`` (None when it is)."""
    if value_type not in VALUE_TYPES:
        return f"type must be one of {', '.join(VALUE_TYPES)}"
    if value is None:
        return "value is required"
    if value_type == "bool" and not isinstance(value, bool):
        return "must be true or false"
    if value_type == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        return "must be a number"
    if value_type == "string":
        if not isinstance(value, str):
            return "must be a string"
        if len(value) > MAX_STRING:
            return f"must be at most {MAX_STRING} characters"
    if value_type == "json":
        if not isinstance(value, dict | list):
            return "must be a JSON object or array"
        if len(json.dumps(value, separators=(",", ":"))) > MAX_JSON_BYTES:
            return f"must be at most {MAX_JSON_BYTES} bytes as JSON"
    return None


def bucket(key: str, user_id: int) -> int:
    """The player's fixed place (0..9999) in this flag's rollout."""
    digest = hashlib.sha256(f"{key}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def applies(flag: Flag, user_id: int, tier: str | None, segment: str | None) -> bool:
    if flag.target_tiers and tier not in flag.target_tiers:
        return False
    if flag.target_segments and segment not in flag.target_segments:
        return False
    if flag.rollout_percent >= 100:
        return True
    return bucket(flag.key, user_id) < flag.rollout_percent * (BUCKETS // 100)


def off_value(flag: Flag) -> Any:
    """What a player outside the targeting gets: the stored off value, else ``false``
    for a boolean and nothing (the flag is absent) for the other types."""
    if flag.off_value is not None:
        return flag.off_value
    return False if flag.value_type == "bool" else None


def resolve(flag: Flag, user_id: int, tier: str | None, segment: str | None) -> Any:
    return flag.value if applies(flag, user_id, tier, segment) else off_value(flag)


def client_view(
    flags: Sequence[Flag], user_id: int, tier: str | None, segment: str | None
) -> dict[str, Any]:
    """``GET /api/flags``: the client-visible flags as this player sees them."""
    out: dict[str, Any] = {}
    for flag in flags:
        if flag.client_visible:
            value = resolve(flag, user_id, tier, segment)
            if value is not None:
                out[flag.key] = value
    return out
