"""Abuse rules (seed 000 "Anomaly Detection Proto: high delta_gold / rapid claims", plus a
win rate the games' odds cannot explain). Each returns findings ``{check, user_id,
details}``; a finding is a lead for a human, not a verdict.

* ``gold_per_minute`` — a player's *net* gold change over any sliding 60 s exceeds
  ``gold_per_min`` (default 200 000, ``CC_DQ_GOLD_PER_MIN``). Why that number: the
  biggest ordinary credits are far below it (signup 1 000, a day-30 streak 6 800, an RPS
  win at the 10 000 max bet +8 800 net), and the slot's top line at the max bet nets
  +163 700 (17.37×), so no single slot spin trips it. A crash cash-out of 21× or more at
  the max bet does (p ≈ 4.6 % per such round): a 200 000-gold minute is worth a look
  even when it is luck. Operator grants (``source_type='admin'``) are excluded: they are
  audited where they are made. Net, not gross: a high roller's wins are mostly their own
  stakes coming back.
* ``rapid_claims`` — more than ``claim_burst`` claims (event, mission, achievement,
  streak ledger rows) within ``claim_burst_s`` seconds. The game's own "claim all" flow is
  a handful of missions plus achievements, hence 10 per 60 s by default. Claims of
  rewards without gold leave no ledger row and are not counted.
* ``win_rate`` — per player and game over the last ``winrate_window_s`` with at least
  ``winrate_min_rounds`` rounds: wins more than ``winrate_sigma`` standard deviations
  above what the engines' exact odds give for *those* rounds. Each round has its own
  exact P(win) (:func:`round_win_probability`: it depends on the bet through flooring,
  on the crash target, on a gacha round's pull count and pity), so the expected wins are
  Σp and the variance Σp(1−p) (a sum of independent Bernoullis; gacha rounds of one
  player share the pity counter, but each round's P is taken from its stored
  ``pity_before``, so the sum stays exact in expectation). At 5σ an honest player is
  flagged about once in 3.5 million checks.

Rounds are read from ``game_rounds`` by ``created_at`` (the window) and grouped in SQL
by what determines P(win), so Python sees a few rows per player, not every round.
"""

from __future__ import annotations

import math
from collections import defaultdict
from functools import lru_cache
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ccweb.events import iso
from ccweb.games.config import DEFAULT_CRASH, DEFAULT_GACHA, DEFAULT_RPS, DEFAULT_SLOT
from ccweb.games.engines import crash, rps, slot
from ccweb.games.engines.base import pay

CLAIM_SOURCES = ("event", "mission", "achievement", "streak")


def finding(check: str, user_id: int, **details: Any) -> dict[str, Any]:
    return {"check": check, "user_id": int(user_id), "details": details}


# --- exact win probabilities ------------------------------------------------------------


@lru_cache(maxsize=1)
def _slot_distribution() -> tuple[tuple[int, float], ...]:
    return tuple(slot.multiplier_distribution(DEFAULT_SLOT).items())


@lru_cache(maxsize=4096)
def slot_win_probability(bet: int) -> float:
    """P(floor(bet × multiplier) > bet) over the slot's exact multiplier distribution."""
    return sum(p for cents, p in _slot_distribution() if pay(bet, cents) > bet)


@lru_cache(maxsize=4096)
def rps_win_probability(bet: int) -> float:
    return rps.rtp_stats(DEFAULT_RPS, bet).win_rate


@lru_cache(maxsize=4096)
def crash_win_probability(bet: int, auto_cashout: float) -> float:
    return crash.rtp_stats(DEFAULT_CRASH, auto_cashout, bet).win_rate


@lru_cache(maxsize=1024)
def gacha_win_probability(count: int, pity_before: int) -> float:
    """P(the ``count`` pulls' total value > count × cost) from pity counter
    ``pity_before``: the engine's pull rule (pity forces the top tier, any top pull
    resets it) run over the distribution of (counter, total value)."""
    cfg = DEFAULT_GACHA
    weights = [r.weight for r in cfg.rarities]
    total_w = sum(weights)
    top = len(cfg.rarities) - 1
    tiers = [
        [r.item_value(i) for i in range(len(r.item_ids))] for r in cfg.rarities
    ]  # per tier: the item values, each equally likely
    states: dict[tuple[int, int], float] = {(pity_before, 0): 1.0}
    for _ in range(count):
        nxt: dict[tuple[int, int], float] = defaultdict(float)
        for (counter, value), prob in states.items():
            forced = counter >= cfg.pity_threshold - 1
            for tier, values in enumerate(tiers):
                p_tier = (1.0 if tier == top else 0.0) if forced else weights[tier] / total_w
                if p_tier == 0.0:
                    continue
                after = 0 if tier == top else counter + 1
                for v in values:
                    nxt[(after, value + v)] += prob * p_tier / len(values)
        states = nxt
    bet = cfg.cost * count
    return sum(p for (_, value), p in states.items() if value > bet)


def round_win_probability(
    game_type: str,
    bet: int,
    auto_cashout: float | None = None,
    count: int | None = None,
    pity_before: int | None = None,
) -> float:
    """The engine's exact P(win) for one round with these parameters."""
    if game_type == "slot":
        return slot_win_probability(bet)
    if game_type == "rps":
        return rps_win_probability(bet)
    if game_type == "crash":
        return crash_win_probability(bet, float(auto_cashout if auto_cashout is not None else 2.0))
    if game_type == "gacha":
        return gacha_win_probability(int(count or 1), int(pity_before or 0))
    raise ValueError(f"unknown game {game_type!r}")


# --- rules ------------------------------------------------------------------------------

_GOLD_PER_MINUTE = text(
    """
    SELECT user_id, max(gained) AS gained,
           (array_agg(created_at ORDER BY gained DESC))[1] AS at
    FROM (
        SELECT user_id, created_at,
               sum(delta_gold) OVER (PARTITION BY user_id ORDER BY created_at
                   RANGE BETWEEN make_interval(secs => 60) PRECEDING AND CURRENT ROW) AS gained
        FROM wallet_ledger
        WHERE id >= :floor AND source_type <> 'admin'
    ) s
    WHERE gained > :limit
    GROUP BY user_id ORDER BY gained DESC
    """
)

_RAPID_CLAIMS = text(
    """
    SELECT user_id, max(n) AS claims, (array_agg(created_at ORDER BY n DESC))[1] AS at
    FROM (
        SELECT user_id, created_at,
               count(*) OVER (PARTITION BY user_id ORDER BY created_at
                   RANGE BETWEEN make_interval(secs => :secs) PRECEDING AND CURRENT ROW) AS n
        FROM wallet_ledger
        WHERE id >= :floor AND source_type = ANY(:sources)
    ) c
    WHERE n > :limit
    GROUP BY user_id ORDER BY claims DESC
    """
)

# grouped by what decides P(win); only players with enough rounds of that game
_ROUND_GROUPS = text(
    """
    WITH r AS (
        SELECT user_id, game_type, bet, outcome,
               CASE WHEN game_type = 'crash'
                    THEN (detail ->> 'auto_cashout')::float8 END AS cashout,
               CASE WHEN game_type = 'gacha' THEN (detail ->> 'count')::int END AS cnt,
               CASE WHEN game_type = 'gacha' THEN (detail ->> 'pity_before')::int END AS pity
        FROM game_rounds WHERE created_at >= :since
    ), busy AS (
        SELECT user_id, game_type FROM r GROUP BY 1, 2 HAVING count(*) >= :min_rounds
    )
    SELECT r.user_id, r.game_type, r.bet, r.cashout, r.cnt, r.pity,
           count(*) AS n, count(*) FILTER (WHERE r.outcome = 'win') AS wins
    FROM r JOIN busy USING (user_id, game_type)
    GROUP BY 1, 2, 3, 4, 5, 6
    """
)


def gold_per_minute(conn: Connection, floor: int | None, limit: int) -> list[dict[str, Any]]:
    if floor is None:
        return []
    rows = conn.execute(_GOLD_PER_MINUTE, {"floor": floor, "limit": limit})
    return [
        finding("gold_per_minute", r.user_id, gained=int(r.gained), limit=limit, at=iso(r.at))
        for r in rows
    ]


def rapid_claims(
    conn: Connection, floor: int | None, limit: int, secs: float
) -> list[dict[str, Any]]:
    if floor is None:
        return []
    rows = conn.execute(
        _RAPID_CLAIMS,
        {"floor": floor, "limit": limit, "secs": secs, "sources": list(CLAIM_SOURCES)},
    )
    return [
        finding(
            "rapid_claims",
            r.user_id,
            claims=int(r.claims),
            within_s=secs,
            limit=limit,
            at=iso(r.at),
        )
        for r in rows
    ]


def win_rate(conn: Connection, since: Any, min_rounds: int, sigma: float) -> list[dict[str, Any]]:
    totals: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0, 0, 0.0, 0.0])
    for r in conn.execute(_ROUND_GROUPS, {"since": since, "min_rounds": min_rounds}):
        p = round_win_probability(r.game_type, int(r.bet), r.cashout, r.cnt, r.pity)
        t = totals[(r.user_id, r.game_type)]
        t[0] += r.n
        t[1] += r.wins
        t[2] += r.n * p
        t[3] += r.n * p * (1.0 - p)
    out = []
    for (uid, game), (n, wins, expected, var) in sorted(totals.items()):
        excess = wins - expected
        z = excess / math.sqrt(var) if var > 0 else (math.inf if excess > 1e-9 else 0.0)
        if z > sigma:
            out.append(
                finding(
                    "win_rate",
                    uid,
                    game_type=game,
                    rounds=int(n),
                    wins=int(wins),
                    win_rate=round(wins / n, 4),
                    expected_win_rate=round(expected / n, 4),
                    z=round(z, 1) if math.isfinite(z) else "inf",
                    sigma_limit=sigma,
                )
            )
    return out
