"""Rock-paper-scissors against a house that picks uniformly at random.

Randomness: float 0 of the round picks ``house_choice = CHOICES[floor(u × 3)]`` with
``CHOICES = ("rock", "paper", "scissors")``. The house never sees the player's choice,
so every choice wins, draws and loses with probability 1/3 each.

Pays: a win pays ``floor(bet × win_multiplier)``, a draw ``floor(bet ×
draw_multiplier)`` (the stake back by default), a loss nothing; so the exact RTP is
``(win_multiplier + draw_multiplier) / 3`` and calibration sets ``win_multiplier =
3 × target − draw`` (1.88 for 96 %).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ccweb.games import odds
from ccweb.games.config import RpsConfig, cents
from ccweb.games.engines.base import RoundResult, RtpStats, check_bet, outcome_of, pay
from ccweb.games.errors import GameInputError

CHOICES = ("rock", "paper", "scissors")
BEATS = {"rock": "scissors", "paper": "rock", "scissors": "paper"}


@dataclass(frozen=True)
class RpsResult(RoundResult):
    game_type = "rps"
    choice: str
    house_choice: str
    multiplier: float  # the multiplier applied to the bet (win, draw or 0)


def check_choice(choice: object) -> str:
    if not isinstance(choice, str) or choice not in BEATS:
        raise GameInputError("choice", "must be rock, paper or scissors")
    return choice


def play(config: RpsConfig, rng: Iterator[float], bet: object, choice: object) -> RpsResult:
    """Play one round: validate, draw the house's hand, settle."""
    stake = check_bet(bet, config.max_bet)
    mine = check_choice(choice)
    house = CHOICES[int(next(rng) * 3) % 3]
    if mine == house:
        multiplier = config.draw_multiplier
    elif BEATS[mine] == house:
        multiplier = config.win_multiplier
    else:
        multiplier = 0.0
    payout = pay(stake, cents(multiplier))
    return RpsResult(
        bet=stake,
        payout=payout,
        outcome=outcome_of(stake, payout),
        choice=mine,
        house_choice=house,
        multiplier=multiplier,
    )


def expected_rtp(config: RpsConfig, bet: int | None = None) -> float:
    """Exact RTP, before flooring or (with ``bet``) after it."""
    if bet is None:
        return odds.rps_expected_multiplier(config)
    return rtp_stats(config, bet).rtp


def rtp_stats(config: RpsConfig, bet: int | None = None) -> RtpStats:
    """Exact per-round figures: three equally likely results."""
    multipliers = (config.win_multiplier, config.draw_multiplier, 0.0)
    ratios = multipliers if bet is None else tuple(pay(bet, cents(m)) / bet for m in multipliers)
    return RtpStats.from_distribution((r, 1 / 3) for r in ratios)
