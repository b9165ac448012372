"""The flags the code reads, with their type, default and the rule their value obeys.

These were environment settings or constants before: an operator can now change them
without a deploy (``PUT /api/admin/flags/{key}``). The default applies while no row
exists, so the code never depends on the seed; where an environment variable existed it
still sets the default (``CC_SIGNUP_GRANT_GOLD``, ``CC_XP_PER_ROUND``,
``CC_SHOP_VELOCITY_LIMIT``). A write to a known key must have the registered type and
pass its check; any other key is an operator's own flag (typically client-visible UI
switches) whose type is fixed by its first write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ccweb.config import get_settings

# The games' kill switches; a test checks these are ccweb.games.models.GAME_TYPES (the
# games import this package, so it cannot import theirs).
GAMES = ("slot", "gacha", "rps", "crash")


def _non_negative_int(v: Any) -> str | None:
    return None if isinstance(v, int) and v >= 0 else "must be a whole number >= 0"


def _positive_int(v: Any) -> str | None:
    return None if isinstance(v, int) and v >= 1 else "must be a whole number >= 1"


@dataclass(frozen=True)
class Known:
    value_type: str
    default: Callable[[], Any]
    description: str
    check: Callable[[Any], str | None] | None = None
    client_visible: bool = False


KNOWN: dict[str, Known] = {
    "signup.invite_required": Known(
        "bool", lambda: True, "Signup needs a valid invite code", client_visible=True
    ),
    "signup.grant_gold": Known(
        "number",
        lambda: get_settings().signup_grant_gold,
        "Gold granted at signup (through the ledger)",
        _non_negative_int,
    ),
    "games.xp_per_round": Known(
        "number",
        lambda: get_settings().xp_per_round,
        "Experience for every game round played",
        _non_negative_int,
    ),
    "shop.enabled": Known(
        "bool", lambda: True, "Kill switch: purchases refused while false", client_visible=True
    ),
    "shop.velocity_limit": Known(
        "number",
        lambda: get_settings().shop_velocity_limit,
        "Purchase attempts per player per CC_SHOP_VELOCITY_WINDOW_S before 429",
        _positive_int,
    ),
    **{
        f"games.{game}.enabled": Known(
            "bool",
            lambda: True,
            f"Kill switch: {game} rounds refused while false",
            client_visible=True,
        )
        for game in GAMES
    },
}


def default(key: str, fallback: Any = None) -> Any:
    known = KNOWN.get(key)
    return known.default() if known is not None else fallback
