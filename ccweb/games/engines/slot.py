"""3-reel, 3-row slot with configurable paylines.

Randomness: floats 0, 1, 2 of the round stop reels 1, 2, 3 at
``stop = floor(u × len(strip))``; reel ``c`` then shows ``strip[(stop + r) % len]`` in
row ``r`` (0 = top). ``reels`` in the result is reel-major: ``reels[c][r]``.

Pays: every payline (one row per reel) is checked on its own; three of a kind pays
``paytable[s].three`` and exactly two from the left (reels 1 and 2 equal, reel 3 not)
pays ``paytable[s].two``, both as multiples of the *total* bet. The spin multiplier is
the sum over lines and ``payout = floor(bet × multiplier)``.

Exact RTP: ``expected_rtp`` uses the closed form of ``odds.slot_pay_rates``;
``rtp_stats`` enumerates every stop combination (28³ = 21 952 for the default), which
also gives the standard deviation and the RTP after flooring for a given bet.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from ccweb.games import odds
from ccweb.games.config import SlotConfig
from ccweb.games.engines.base import RoundResult, RtpStats, check_bet, outcome_of, pay

Window = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class LineWin:
    line: int  # index into config.paylines
    rows: tuple[int, int, int]  # the row taken on each reel
    symbol: str
    count: int  # 3 (three of a kind) or 2 (two from the left)
    multiplier: float  # × total bet


@dataclass(frozen=True)
class SlotResult(RoundResult):
    game_type = "slot"
    reels: Window  # reels[reel][row]
    stops: tuple[int, ...]  # strip index shown in the top row of each reel
    lines: tuple[LineWin, ...]
    multiplier: float  # sum of the winning lines' multipliers


def play(config: SlotConfig, rng: Iterator[float], bet: object) -> SlotResult:
    """Spin once: validate the bet, draw three reel stops, pay the winning lines."""
    stake = check_bet(bet, config.max_bet)
    stops = tuple(int(next(rng) * len(strip)) % len(strip) for strip in config.strips)
    reels = window(config, stops)
    lines, total_cents = line_wins(config, reels)
    payout = pay(stake, total_cents)
    return SlotResult(
        bet=stake,
        payout=payout,
        outcome=outcome_of(stake, payout),
        reels=reels,
        stops=stops,
        lines=lines,
        multiplier=total_cents / 100,
    )


def window(config: SlotConfig, stops: tuple[int, ...]) -> Window:
    """The 3×3 symbols visible for the given stops, reel-major."""
    return tuple(reel[stop] for reel, stop in zip(config.windows, stops, strict=True))


def line_wins(config: SlotConfig, reels: Window) -> tuple[tuple[LineWin, ...], int]:
    """Winning lines and the total multiplier in hundredths of the bet."""
    wins = []
    total = 0
    pays = config.pay_cents
    first, second, third = reels
    for index, rows in enumerate(config.paylines):
        a, b, c = first[rows[0]], second[rows[1]], third[rows[2]]
        if a != b:
            continue
        count = 3 if b == c else 2
        cents = pays[a][1] if count == 3 else pays[a][0]
        if cents:
            wins.append(LineWin(index, rows, a, count, cents / 100))
            total += cents
    return tuple(wins), total


def expected_rtp(config: SlotConfig, bet: int | None = None) -> float:
    """Exact RTP: closed form without flooring, or by enumeration for a given bet."""
    if bet is None:
        return odds.slot_expected_multiplier(config)
    return rtp_stats(config, bet).rtp


def multiplier_distribution(config: SlotConfig) -> dict[int, float]:
    """Probability of every spin multiplier (in hundredths), over all stop combinations."""
    counts: Counter[int] = Counter()
    for reels in itertools.product(*config.windows):
        counts[line_wins(config, reels)[1]] += 1
    total = sum(counts.values())
    return {cents: n / total for cents, n in counts.items()}


def rtp_stats(config: SlotConfig, bet: int | None = None) -> RtpStats:
    """Exact RTP, σ, hit and win rate per spin; with ``bet`` payouts are floored."""
    dist = multiplier_distribution(config)
    if bet is None:
        return RtpStats.from_distribution((c / 100, p) for c, p in dist.items())
    return RtpStats.from_distribution((pay(bet, c) / bet, p) for c, p in dist.items())
