"""Gacha: weighted rarities, a pity guarantee, and items worth a fixed amount of gold.

A round is 1 or 10 pulls (``config.counts``) at ``config.cost`` gold each, so the bet
is ``cost × count`` and the payout is the sum of the items' gold values.

Pity: ``pity`` is the number of pulls in a row without the top tier before this round
(the caller stores the returned ``pity`` and passes it back next time). A pull made
when ``pity ≥ pity_threshold − 1`` is the top tier; any top pull, drawn or forced,
resets it to 0. Hence at most ``pity_threshold − 1`` pulls in a row miss the top tier.
A 10-pull applies the rule pull by pull, so a guarantee can land inside the batch.

Randomness: pull ``i`` (0-based) of the round uses float ``2i`` for the tier
(``t = floor(u × Σweights)``, first tier whose cumulative weight exceeds ``t``; the
float is still consumed when pity forces the tier) and float ``2i + 1`` for the item
(``item_ids[floor(u × len)]``).

Exact RTP is the long-run value per pull (``odds.gacha_rarity_rates``); σ comes from
the renewal-reward theorem over pity cycles, so it accounts for pity's correlation.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate

from ccweb.games import odds
from ccweb.games.config import GachaConfig
from ccweb.games.engines.base import RoundResult, RtpStats, outcome_of
from ccweb.games.errors import GameInputError


@dataclass(frozen=True)
class GachaItem:
    item_id: int
    rarity: str
    value: int  # gold credited for this item
    guaranteed: bool  # True when pity forced the top tier


@dataclass(frozen=True)
class GachaResult(RoundResult):
    game_type = "gacha"
    count: int
    items: tuple[GachaItem, ...]
    pity_before: int
    pity: int  # pulls in a row without the top tier after this round — store it
    pulls_to_guarantee: int  # the guarantee lands on at most this many more pulls


def check_count(config: GachaConfig, count: object) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count not in config.counts:
        allowed = " or ".join(str(c) for c in config.counts)
        raise GameInputError("count", f"must be {allowed}")
    return count


def play(
    config: GachaConfig, rng: Iterator[float], count: object = 1, pity: int = 0
) -> GachaResult:
    """Pull ``count`` times starting from pity counter ``pity``."""
    n = check_count(config, count)
    if isinstance(pity, bool) or not isinstance(pity, int) or pity < 0:
        raise ValueError("pity counter must be an integer >= 0")  # server state, not input
    cumulative = list(accumulate(r.weight for r in config.rarities))
    total = cumulative[-1]
    top = len(config.rarities) - 1
    counter = pity
    items = []
    for _ in range(n):
        u_tier, u_item = next(rng), next(rng)
        forced = counter >= config.pity_threshold - 1
        tier = top if forced else bisect_right(cumulative, int(u_tier * total) % total)
        rarity = config.rarities[tier]
        index = int(u_item * len(rarity.item_ids)) % len(rarity.item_ids)
        items.append(
            GachaItem(rarity.item_ids[index], rarity.name, rarity.item_value(index), forced)
        )
        counter = 0 if tier == top else counter + 1
    bet = config.cost * n
    payout = sum(item.value for item in items)
    return GachaResult(
        bet=bet,
        payout=payout,
        outcome=outcome_of(bet, payout),
        count=n,
        items=tuple(items),
        pity_before=pity,
        pity=counter,
        pulls_to_guarantee=max(config.pity_threshold - counter, 1),
    )


def expected_rtp(config: GachaConfig) -> float:
    """Exact long-run RTP: expected gold per pull over the cost of a pull."""
    return odds.gacha_expected_value(config) / config.cost


def rtp_stats(config: GachaConfig) -> RtpStats:
    """Exact per-pull figures in units of ``cost``; ``stddev`` is the asymptotic one.

    Pity makes pulls dependent, so the σ that governs a long simulation is
    √(E[(R − μT)²] / E[T]) over pity cycles (the pulls up to and including a top item).
    A cycle of length t has t − 1 non-top pulls (mean m, variance v) and one top pull
    (mean V, variance w), so E[(R − μT)² | t] = (t − 1)v + w + ((t − 1)(m − μ) + V − μ)².
    """
    *low, top = config.rarities
    rest = sum(r.weight for r in low)
    p = top.weight / (rest + top.weight)
    low_dist = [
        (r.weight / rest / len(r.item_ids), r.item_value(i))
        for r in low
        for i in range(len(r.item_ids))
    ]
    top_dist = [(1 / len(top.item_ids), top.item_value(i)) for i in range(len(top.item_ids))]
    m, v = _mean_var(low_dist)
    big_v, w = _mean_var(top_dist)
    mu = odds.gacha_expected_value(config)
    n = config.pity_threshold
    mean_t = second = 0.0
    for t in range(1, n + 1):
        prob = (1 - p) ** (t - 1) * (p if t < n else 1.0)
        mean_t += prob * t
        second += prob * ((t - 1) * v + w + ((t - 1) * (m - mu) + big_v - mu) ** 2)
    rates = odds.gacha_rarity_rates(config)
    per_item = [
        (rate / len(r.item_ids), r.item_value(i))
        for rate, r in zip(rates, config.rarities, strict=True)
        for i in range(len(r.item_ids))
    ]
    cost = config.cost
    return RtpStats(
        rtp=mu / cost,
        stddev=(second / mean_t) ** 0.5 / cost,
        hit_rate=sum(prob for prob, value in per_item if value > 0),
        win_rate=sum(prob for prob, value in per_item if value > cost),
    )


def _mean_var(dist: list[tuple[float, int]]) -> tuple[float, float]:
    mean = sum(p * x for p, x in dist)
    return mean, sum(p * x * x for p, x in dist) - mean * mean
