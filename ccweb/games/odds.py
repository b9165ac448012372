"""The probability model of each configuration and its calibration to a target RTP.

Expected return is linear in the pay values: ``RTP = Σ rate_k · pay_k / stake``, where
``rate_k`` is how often pay ``k`` fires per round. This module computes those rates
exactly (reel-strip symbol frequencies for the slot, the stationary Markov chain of the
pity counter for the gacha) and then *derives* the pay values from the target RTP: the
operator writes only the shape (relative pays, relative item values); :func:`calibrate_slot`
and :func:`calibrate_gacha` scale it to the target and round it to the currency grid
(0.01× bet for slot multipliers; whole gold per item, with some items of a tier one gold
above the rest), searching the round-down/round-up choices exhaustively for the table
closest to the target. Nothing is hand-tuned, so changing ``target_rtp`` is a one-line
edit (``tests/unit/games/test_config.py`` recalibrates to 85–100 %).

Kept free of engine code so ``config.py`` can build calibrated defaults at import time.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ccweb.games.config import GachaConfig, RpsConfig, SlotConfig, SlotPay

MAX_COMBINATIONS = 1 << 16  # exhaustive search stays well under a second


def closest_combination(
    options: Sequence[Sequence[float]], rates: Sequence[float], target: float
) -> list[int]:
    """Pick one option per value so that ``Σ rate·option`` is closest to ``target``.

    Exhaustive (the option lists are short); returns the chosen index per value. Ties go
    to the smaller sum, i.e. to the house.
    """
    size = math.prod(len(o) for o in options)
    if size > MAX_COMBINATIONS:
        raise ValueError(f"{size} combinations are too many to calibrate exhaustively")
    best: tuple[float, float, tuple[int, ...]] | None = None
    for picks in itertools.product(*(range(len(o)) for o in options)):
        total = sum(r * o[i] for r, o, i in zip(rates, options, picks, strict=True))
        if best is None or (abs(total - target), total) < best[:2]:
            best = (abs(total - target), total, picks)
    assert best is not None
    return list(best[2])


def round_to_target(
    ideal: Sequence[float], rates: Sequence[float], step: float, target: float
) -> list[float]:
    """Round each ideal value down or up to a multiple of ``step`` so that
    ``Σ rate·value`` lands as close to ``target`` as the grid allows."""
    grids = [sorted({math.floor(v / step + 1e-9), math.ceil(v / step - 1e-9)}) for v in ideal]
    picks = closest_combination([[n * step for n in g] for g in grids], rates, target)
    return [round(g[i] * step, 10) for g, i in zip(grids, picks, strict=True)]


# --- slot -----------------------------------------------------------------------------


def slot_symbol_shares(config: SlotConfig) -> list[dict[str, float]]:
    """Per reel, the share of strip positions showing each symbol (any visible row)."""
    shares = []
    for strip in config.strips:
        counts: dict[str, float] = {}
        for sym in strip:
            counts[sym] = counts.get(sym, 0.0) + 1.0
        shares.append({sym: n / len(strip) for sym, n in counts.items()})
    return shares


def slot_pay_rates(config: SlotConfig) -> dict[tuple[str, int], float]:
    """Expected number of line wins per spin for (symbol, 3) and (symbol, 2).

    Each payline takes one cell from each reel, a uniform stop makes every cell of reel
    ``c`` uniform over its strip, and the reels stop independently, so for every line
    P(three ``s``) = f₀f₁f₂ and P(exactly two ``s`` from the left) = f₀f₁(1 − f₂).
    """
    f0, f1, f2 = slot_symbol_shares(config)
    n_lines = len(config.paylines)
    rates: dict[tuple[str, int], float] = {}
    for sym in config.paytable:
        a, b, c = f0.get(sym, 0.0), f1.get(sym, 0.0), f2.get(sym, 0.0)
        rates[(sym, 3)] = n_lines * a * b * c
        rates[(sym, 2)] = n_lines * a * b * (1.0 - c)
    return rates


def slot_expected_multiplier(config: SlotConfig) -> float:
    """Exact mean of the spin multiplier (× total bet) before flooring to whole gold."""
    rates = slot_pay_rates(config)
    return sum(
        rates[(sym, 3)] * pay.three + rates[(sym, 2)] * pay.two
        for sym, pay in config.paytable.items()
    )


def calibrate_slot(config: SlotConfig) -> SlotConfig:
    """Scale the paytable's shape to ``target_rtp`` and round it to 0.01× bet."""
    base = slot_expected_multiplier(config)
    if base <= 0:
        raise ValueError("slot paytable never pays")
    scale = config.target_rtp / base
    rates = slot_pay_rates(config)
    keys = [(sym, k) for sym in config.paytable for k in (3, 2)]
    ideal = [_slot_pay(config.paytable[sym], k) * scale for sym, k in keys]
    rounded = round_to_target(ideal, [rates[key] for key in keys], 0.01, config.target_rtp)
    pays = {
        sym: replace(pay, three=rounded[2 * i], two=rounded[2 * i + 1])
        for i, (sym, pay) in enumerate(config.paytable.items())
    }
    return replace(config, paytable=pays)


def _slot_pay(pay: SlotPay, count: int) -> float:
    return pay.three if count == 3 else pay.two


# --- gacha ----------------------------------------------------------------------------


def gacha_rarity_rates(config: GachaConfig) -> list[float]:
    """Long-run share of pulls landing on each rarity, pity included (exact).

    The pity counter is a Markov chain on 0…N−1: from state c a pull is top with
    probability p (or 1 when c = N−1, the guarantee) and resets to 0, else moves to c+1.
    Its stationary law is π_c ∝ (1−p)^c, so the top rarity's share is the inverse of the
    mean cycle length, p / (1 − (1−p)^N); every other pull is a normal draw conditioned
    on "not top", i.e. split by the remaining weights.
    """
    weights = [r.weight for r in config.rarities]
    total, top = sum(weights), weights[-1]
    p = top / total
    top_rate = p / (1.0 - (1.0 - p) ** config.pity_threshold)
    rest = total - top
    return [(1.0 - top_rate) * w / rest for w in weights[:-1]] + [top_rate]


def gacha_expected_value(config: GachaConfig) -> float:
    """Exact long-run gold value returned per pull."""
    rates = gacha_rarity_rates(config)
    return sum(rate * r.mean_value for rate, r in zip(rates, config.rarities, strict=True))


def calibrate_gacha(config: GachaConfig) -> GachaConfig:
    """Scale the tiers' relative values so one pull returns ``target_rtp × cost`` gold.

    Gold is whole, so each tier gets ``value = floor(ideal)`` and the calibration picks
    how many of its items (``bonus_items``) are worth one gold more: a tier's mean can
    then move in steps of 1/len(items), fine enough to land within 0.01 % of the target.
    Drop rates and pity stay exactly as published.
    """
    base = gacha_expected_value(config)
    if base <= 0:
        raise ValueError("gacha items are worth nothing")
    target = config.target_rtp * config.cost
    floors, options = [], []
    for r in config.rarities:
        ideal = r.mean_value * target / base
        n = len(r.item_ids)
        floors.append(math.floor(ideal))
        options.append([math.floor(ideal) + k / n for k in range(n + 1)])
    picks = closest_combination(options, gacha_rarity_rates(config), target)
    rarities = tuple(
        replace(r, value=f + k // len(r.item_ids), bonus_items=k % len(r.item_ids))
        for r, f, k in zip(config.rarities, floors, picks, strict=True)
    )
    return replace(config, rarities=rarities)


# --- rock-paper-scissors --------------------------------------------------------------


def rps_expected_multiplier(config: RpsConfig) -> float:
    """The house picks uniformly, so win, draw and loss each have probability 1/3."""
    return (config.win_multiplier + config.draw_multiplier) / 3.0


def calibrate_rps(config: RpsConfig) -> RpsConfig:
    """Derive the win multiplier from the target: (win + draw) / 3 = target."""
    (win,) = round_to_target(
        [3.0 * config.target_rtp - config.draw_multiplier],
        [1.0 / 3.0],
        0.01,
        config.target_rtp - config.draw_multiplier / 3.0,
    )
    return replace(config, win_multiplier=win)
