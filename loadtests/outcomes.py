"""Which error answers are part of the game, per request, and how a response is judged.

A player who claims a streak twice, bets more than they hold or buys a sold-out chest
gets a 409 — the server doing its job, not failing. Those answers count as successes in
the report; any other non-2xx/304 answer (a 5xx, a 400 from a request the client built
wrong, a 401, a 429) is a failure. The lists name exactly the codes each request may
answer with in normal play (SPEC §2/§3), so an unexpected 409 code is still a failure.
"""

from __future__ import annotations

from typing import Any

from loadtests import targets as t

GAME_OUTCOMES: dict[str, frozenset[str]] = {
    t.STREAK_CLAIM: frozenset({"ALREADY_CLAIMED"}),
    **{game: frozenset({"INSUFFICIENT_GOLD"}) for game in t.GAMES},
    t.PARTICIPATE: frozenset({"EVENT_EXPIRED"}),
    t.EVENT_CLAIM: frozenset({"NOT_CLAIMABLE", "ALREADY_CLAIMED", "EVENT_EXPIRED"}),
    t.MISSION_CLAIM: frozenset({"NOT_CLAIMABLE", "ALREADY_CLAIMED"}),
    t.PURCHASE: frozenset({"INSUFFICIENT_GOLD", "OUT_OF_STOCK", "LIMIT_REACHED"}),
}

OK_STATUSES = frozenset({200, 201, 204, 304})


def error_code(body: Any) -> str | None:
    """``error.code`` of a SPEC error body, or None."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return code if isinstance(code, str) else None
    return None


def verdict(
    name: str, status: int, body: Any, extra_ok: frozenset[str] = frozenset()
) -> str | None:
    """None when the answer is a success or a game outcome, else the failure's text.
    ``extra_ok`` adds codes allowed for this one call (e.g. NOT_FOUND for an endpoint
    the server under test does not have yet)."""
    if status in OK_STATUSES:
        return None
    code = error_code(body)
    if status == 409 and code in GAME_OUTCOMES.get(name, frozenset()):
        return None
    if code is not None and code in extra_ok:
        return None
    return f"HTTP {status} {code or ''}".rstrip()


def is_game_outcome(name: str, status: int, body: Any) -> bool:
    return status == 409 and error_code(body) in GAME_OUTCOMES.get(name, frozenset())
