"""Crash with an automatic cash-out: the player names a target, the round names a crash point.

Randomness: float 0 of the round, ``u`` in [0, 1), gives::

    crash_point = max(1.00, floor(100 × (1 − edge) / (1 − u)) / 100)

computed in exact integer arithmetic (``u`` is a dyadic rational, the edge is in basis
points), so a player recomputes the same two decimals. For every x ≥ 1.01 on the 0.01
grid, P(crash_point ≥ x) = P(u ≥ 1 − (1 − edge)/x) = (1 − edge)/x; the rest of the mass
(about ``edge + (1 − edge)·0.01/1.01`` ≈ 4.95 % at a 4 % edge) is an instant crash at 1.00.

Settlement: the bet wins when ``auto_cashout ≤ crash_point`` (equal counts as a win, the
cash-out happens on the tick the multiplier reaches it) and pays
``floor(bet × auto_cashout)``; otherwise it pays 0. RTP = P(win) × auto_cashout =
1 − edge for *every* target, which is why the crash config has an edge, not a paytable.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from ccweb.games.config import CrashConfig, cents
from ccweb.games.engines.base import RoundResult, RtpStats, check_bet, outcome_of, pay
from ccweb.games.errors import GameInputError

STREAM_RESOLUTION = 2**32  # the fairness floats are k / 2**32
_HUNDREDTH = Decimal("0.01")


@dataclass(frozen=True)
class CrashResult(RoundResult):
    game_type = "crash"
    auto_cashout: float
    crash_point: float
    cashed_out_at: float | None  # auto_cashout on a win, None when the round crashed first


def check_auto_cashout(config: CrashConfig, value: object) -> int:
    """A number with at most two decimals within the configured range; returns hundredths."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise GameInputError("auto_cashout", "must be a number")
    # str() of a float is its shortest repr, so 2.3 is read as 2.30, not 2.2999…
    amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    lo, hi = cents(config.min_auto_cashout), cents(config.max_auto_cashout)
    if not amount.is_finite() or not lo <= amount * 100 <= hi:
        raise GameInputError("auto_cashout", f"must be between {lo / 100:.2f} and {hi / 100:.2f}")
    if amount != amount.quantize(_HUNDREDTH):
        raise GameInputError("auto_cashout", "must have at most two decimals")
    return int(amount * 100)


def crash_point_cents(config: CrashConfig, u: float) -> int:
    """The crash point in hundredths for float ``u`` — exact, see the module docstring."""
    num, den = u.as_integer_ratio()
    if not 0 <= num < den:
        raise ValueError("u must be in [0, 1)")
    keep = 10_000 - config.edge_bp
    return max(100, (keep * 100 * den) // (10_000 * (den - num)))


def play(
    config: CrashConfig, rng: Iterator[float], bet: object, auto_cashout: object
) -> CrashResult:
    """Settle one round for a bet with an automatic cash-out target."""
    stake = check_bet(bet, config.max_bet)
    target = check_auto_cashout(config, auto_cashout)
    point = crash_point_cents(config, next(rng))
    won = target <= point
    payout = pay(stake, target) if won else 0
    return CrashResult(
        bet=stake,
        payout=payout,
        outcome=outcome_of(stake, payout),
        auto_cashout=target / 100,
        crash_point=point / 100,
        cashed_out_at=target / 100 if won else None,
    )


def win_probability(config: CrashConfig, auto_cashout: float) -> float:
    """Exact P(crash_point ≥ auto_cashout) for the fairness stream's k/2³² floats.

    crash ≥ A/100 ⟺ keep·100·2³² ≥ A·10⁴·(2³² − k) ⟺ 2³² − k ≤ M with
    M = ⌊keep·100·2³² / (A·10⁴)⌋, which exactly M of the 2³² values of k satisfy.
    """
    target = check_auto_cashout(config, auto_cashout)
    keep = 10_000 - config.edge_bp
    m = (keep * 100 * STREAM_RESOLUTION) // (target * 10_000)
    return min(m, STREAM_RESOLUTION) / STREAM_RESOLUTION


def expected_rtp(config: CrashConfig, auto_cashout: float = 2.0, bet: int | None = None) -> float:
    """Exact RTP for a cash-out target, before flooring or (with ``bet``) after it."""
    return rtp_stats(config, auto_cashout, bet).rtp


def rtp_stats(config: CrashConfig, auto_cashout: float = 2.0, bet: int | None = None) -> RtpStats:
    """Exact per-round figures: a win paying the target with P(win), else nothing."""
    p = win_probability(config, auto_cashout)
    target = check_auto_cashout(config, auto_cashout)
    ratio = target / 100 if bet is None else pay(bet, target) / bet
    return RtpStats.from_distribution([(ratio, p), (0.0, 1.0 - p)])
