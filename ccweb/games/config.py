"""Configuration of the four games: limits, paytables, weights, pity and target RTP.

Every number an operator might tune lives here as a frozen dataclass; the engines only
read them. The ``DEFAULT_*`` configs are *calibrated*: the operator writes the shape
(reel strips, relative pays, drop rates, relative item values) and ``odds.calibrate_*``
derives the absolute pays from ``target_rtp`` (see ``odds.py``). :func:`validate` checks
any config before use; operator mistakes raise ``ValueError`` (player mistakes raise
``GameInputError`` in the engines).

Money conventions shared by all games: bets and payouts are whole gold; a payout is
``floor(bet × multiplier)`` with multipliers on a 0.01 grid, so bets that are multiples
of 100 are paid exactly and smaller bets lose the fraction to the house.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

from ccweb.games import odds

DEFAULT_MAX_BET = 10_000
DEFAULT_TARGET_RTP = 0.96


def cents(value: float) -> int:
    """A 0.01-grid multiplier as an integer count of hundredths (exact payout maths)."""
    return round(value * 100)


def _on_cent_grid(value: float) -> bool:
    return abs(value * 100 - round(value * 100)) < 1e-6


# --- slot -----------------------------------------------------------------------------

SLOT_SYMBOL_CODES = {
    "C": "cherry",
    "L": "lemon",
    "O": "orange",
    "B": "bell",
    "X": "bar",
    "7": "seven",
}

# Paylines as the row (0 = top) taken on reels 1, 2, 3: three rows and two diagonals.
FIVE_PAYLINES: tuple[tuple[int, int, int], ...] = (
    (1, 1, 1),
    (0, 0, 0),
    (2, 2, 2),
    (0, 1, 2),
    (2, 1, 0),
)


@dataclass(frozen=True)
class SlotPay:
    """Line pays as multiples of the *total* bet: three of a kind on a payline, or
    exactly two from the left (reels 1 and 2 match, reel 3 differs)."""

    three: float
    two: float = 0.0


@dataclass(frozen=True)
class SlotConfig:
    strips: tuple[tuple[str, ...], ...]  # one strip per reel; a stop shows 3 consecutive
    paytable: Mapping[str, SlotPay]
    paylines: tuple[tuple[int, int, int], ...] = FIVE_PAYLINES
    max_bet: int = DEFAULT_MAX_BET
    target_rtp: float = DEFAULT_TARGET_RTP
    rows: int = 3

    @cached_property
    def windows(self) -> tuple[tuple[tuple[str, ...], ...], ...]:
        """Per reel, the 3 visible symbols (top to bottom) for every stop position."""
        return tuple(
            tuple(
                tuple(strip[(stop + r) % len(strip)] for r in range(self.rows))
                for stop in range(len(strip))
            )
            for strip in self.strips
        )

    @cached_property
    def pay_cents(self) -> dict[str, tuple[int, int]]:
        """Per symbol, (two, three) pays in hundredths of the bet — for integer payouts."""
        return {s: (cents(p.two), cents(p.three)) for s, p in self.paytable.items()}


def slot_strip(codes: str) -> tuple[str, ...]:
    """Expand a compact strip such as ``"CLO7"`` into symbol names."""
    return tuple(SLOT_SYMBOL_CODES[c] for c in codes)


# --- gacha ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rarity:
    """A rarity tier. Every item carries a gold value, credited when it is pulled: it is
    what a pull *returns* and what makes the gacha's RTP defined (items are cosmetic; the
    gold is their sell-back value, paid at once). Items of a tier are worth ``value``,
    except the first ``bonus_items`` which are worth ``value + 1`` — the fine knob that
    lets calibration hit the target RTP in whole gold."""

    name: str
    weight: int
    value: int
    item_ids: tuple[int, ...]
    bonus_items: int = 0

    def item_value(self, index: int) -> int:
        return self.value + (1 if index < self.bonus_items else 0)

    @property
    def mean_value(self) -> float:
        return self.value + self.bonus_items / len(self.item_ids)


@dataclass(frozen=True)
class GachaConfig:
    rarities: tuple[Rarity, ...]  # lowest first; the LAST tier is the pity tier
    cost: int = 100  # gold per pull; a 10-pull costs 10 × cost
    pity_threshold: int = 60  # the Nth pull in a row without the top tier is top
    counts: tuple[int, ...] = (1, 10)
    target_rtp: float = DEFAULT_TARGET_RTP

    @property
    def top(self) -> Rarity:
        return self.rarities[-1]


# --- rock-paper-scissors --------------------------------------------------------------


@dataclass(frozen=True)
class RpsConfig:
    win_multiplier: float  # × bet paid on a win (derived from the target by calibrate_rps)
    draw_multiplier: float = 1.0  # a draw returns the stake
    max_bet: int = DEFAULT_MAX_BET
    target_rtp: float = DEFAULT_TARGET_RTP


# --- crash ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CrashConfig:
    """P(crash point ≥ x) = (1 − house_edge) / x, so every cash-out target returns
    exactly ``1 − house_edge``: the RTP *is* the edge's complement."""

    house_edge: float = 0.04
    max_bet: int = DEFAULT_MAX_BET
    min_auto_cashout: float = 1.01
    max_auto_cashout: float = 1000.0

    @property
    def target_rtp(self) -> float:
        return 1.0 - self.house_edge

    @property
    def edge_bp(self) -> int:
        """The edge in basis points (1/10 000) — the crash maths is done in integers."""
        return round(self.house_edge * 10_000)


GameConfig = SlotConfig | GachaConfig | RpsConfig | CrashConfig
C = TypeVar("C", bound=GameConfig)


# --- validation -----------------------------------------------------------------------


def validate(config: C) -> C:
    """Reject a config the engines could not play fairly; returns it for chaining."""
    problems: list[str] = []
    if isinstance(config, SlotConfig | RpsConfig | CrashConfig):
        mb = config.max_bet
        if isinstance(mb, bool) or not isinstance(mb, int) or mb < 1:
            problems.append("max_bet must be an integer >= 1")
    if not 0.0 < config.target_rtp <= 1.0:
        problems.append("target_rtp must be in (0, 1]")
    if isinstance(config, SlotConfig):
        problems += _slot_problems(config)
    elif isinstance(config, GachaConfig):
        problems += _gacha_problems(config)
    elif isinstance(config, RpsConfig):
        for name in ("win_multiplier", "draw_multiplier"):
            value = getattr(config, name)
            if value < 0 or not _on_cent_grid(value):
                problems.append(f"{name} must be >= 0 with at most 2 decimals")
    else:
        if (
            not 0.0 < config.house_edge < 1.0
            or abs(config.house_edge * 1e4 - config.edge_bp) > 1e-6
        ):
            problems.append("house_edge must be in (0, 1) in whole basis points")
        lo, hi = config.min_auto_cashout, config.max_auto_cashout
        if lo < 1.01 or hi < lo or not (_on_cent_grid(lo) and _on_cent_grid(hi)):
            problems.append("auto_cashout limits must be 1.01 <= min <= max on a 0.01 grid")
    if problems:
        raise ValueError(f"invalid {type(config).__name__}: " + "; ".join(problems))
    return config


def _slot_problems(config: SlotConfig) -> list[str]:
    problems = []
    if len(config.strips) != 3 or config.rows != 3:
        problems.append("the slot has exactly 3 reels showing 3 rows")
    if any(len(strip) < config.rows for strip in config.strips):
        problems.append("every strip needs at least 3 positions")
    unknown = {s for strip in config.strips for s in strip} - set(config.paytable)
    if unknown:
        problems.append(f"symbols without a paytable entry: {sorted(unknown)}")
    for sym, pay in config.paytable.items():
        if min(pay.two, pay.three) < 0 or not (_on_cent_grid(pay.two) and _on_cent_grid(pay.three)):
            problems.append(f"pays for {sym} must be >= 0 with at most 2 decimals")
    if not config.paylines or any(
        len(line) != 3 or not all(0 <= r < config.rows for r in line) for line in config.paylines
    ):
        problems.append("paylines must be non-empty triples of row indexes 0-2")
    return problems


def _gacha_problems(config: GachaConfig) -> list[str]:
    problems = []
    if len(config.rarities) < 2:
        problems.append("at least two rarities (the last is the pity tier)")
    if any(r.weight <= 0 for r in config.rarities):
        problems.append("rarity weights must be positive")
    if any(r.value < 0 or not 0 <= r.bonus_items <= len(r.item_ids) for r in config.rarities):
        problems.append("item values must be >= 0 gold and 0 <= bonus_items <= items")
    ids = [i for r in config.rarities for i in r.item_ids]
    if any(not r.item_ids for r in config.rarities) or len(ids) != len(set(ids)):
        problems.append("every rarity needs items and item ids must be unique")
    if config.cost < 1 or config.pity_threshold < 1:
        problems.append("cost and pity_threshold must be >= 1")
    if not config.counts or any(c < 1 for c in config.counts):
        problems.append("counts must be positive")
    return problems


# --- calibrated defaults ----------------------------------------------------------------

# Reel strips (28 stops each): cherry 8, lemon 6, orange 5, bell 4, bar 3, seven 2,
# shuffled so that a visible window of 3 never shows a symbol twice on one reel.
_SLOT_SHAPE = SlotConfig(
    strips=(
        slot_strip("C7LBCLOXBCLOCBLCXOLCOBCL7CXO"),
        slot_strip("CXLCOXCLBCOL7CBOLCOLC7BCLXOB"),
        slot_strip("BOCLOCLOCLBCXLBOCX7OC7LCBLCX"),
    ),
    # Relative shape only: calibrate_slot scales it to target_rtp.
    paytable={
        "cherry": SlotPay(three=1.0, two=0.5),
        "lemon": SlotPay(three=1.5, two=0.5),
        "orange": SlotPay(three=2.0, two=0.5),
        "bell": SlotPay(three=3.0, two=0.6),
        "bar": SlotPay(three=5.0, two=0.8),
        "seven": SlotPay(three=12.0, two=1.5),
    },
)

_GACHA_SHAPE = GachaConfig(
    rarities=(
        # weights per 10 000 pulls; value = relative worth, scaled to gold by calibration
        Rarity("common", 7000, 1, tuple(range(1001, 1009))),
        Rarity("rare", 2300, 3, tuple(range(2001, 2007))),
        Rarity("epic", 600, 8, tuple(range(3001, 3005))),
        Rarity("legendary", 100, 25, (4001, 4002)),
    ),
)

DEFAULT_SLOT: SlotConfig = validate(odds.calibrate_slot(validate(_SLOT_SHAPE)))
DEFAULT_GACHA: GachaConfig = validate(odds.calibrate_gacha(validate(_GACHA_SHAPE)))
DEFAULT_RPS: RpsConfig = validate(odds.calibrate_rps(RpsConfig(win_multiplier=0.0)))
DEFAULT_CRASH: CrashConfig = validate(CrashConfig())
