"""RTP proof: exact RTP equals the configured target, and ≥ 100 000 simulated rounds
through the real engines (outcomes from the provably-fair stream of a fresh random
server seed) land within ±1 % (relative) of it.

The number of rounds per game is derived from the exact per-round σ so that the ±1 %
band is at least 4.5 standard errors wide (a false failure about once in 150 000 runs),
and never fewer than 100 000. Bets are multiples of 100 so flooring to whole gold is
exact and the simulation measures the paytable, not rounding.
"""

from __future__ import annotations

import math

import pytest

from ccweb.games import fairness, odds
from ccweb.games.config import DEFAULT_CRASH, DEFAULT_GACHA, DEFAULT_RPS, DEFAULT_SLOT
from ccweb.games.engines import crash, gacha, rps, slot
from ccweb.games.engines.base import RtpStats

MIN_ROUNDS = 100_000
TOLERANCE = 0.01  # relative, i.e. 0.96 ± 0.0096
CRASH_TARGETS = (1.01, 1.5, 2.0, 3.0)
RPS_CHOICES = ("rock", "paper", "scissors")


def _rounds(stats: RtpStats, pulls_per_round: float = 1.0) -> int:
    return max(MIN_ROUNDS, math.ceil(stats.rounds_for(TOLERANCE) / pulls_per_round))


def _report(
    game: str, target: float, exact: float, measured: float, sd: float, n: int, units: int = 0
) -> None:
    """Shown with ``pytest -s``; ``units`` = draws the σ refers to (gacha: pulls)."""
    units = units or n
    print(
        f"\n{game:6s} target={target:.4f} exact={exact:.6f} measured={measured:.6f} "
        f"sigma={sd:.3f}xstake rounds={n} se={sd / math.sqrt(units):.5f}"
    )


def _check(measured: float, target: float) -> None:
    assert abs(measured - target) <= TOLERANCE * target, (measured, target)


def test_exact_rtp_of_every_default_equals_its_target_within_0_1_percent():
    exact = {
        "slot": (slot.expected_rtp(DEFAULT_SLOT), DEFAULT_SLOT.target_rtp),
        "gacha": (gacha.expected_rtp(DEFAULT_GACHA), DEFAULT_GACHA.target_rtp),
        "rps": (rps.expected_rtp(DEFAULT_RPS), DEFAULT_RPS.target_rtp),
    }
    for target in (*CRASH_TARGETS, 10.0, 1000.0):
        exact[f"crash@{target}"] = (
            crash.expected_rtp(DEFAULT_CRASH, target),
            DEFAULT_CRASH.target_rtp,
        )
    for game, (rtp, target) in exact.items():
        assert target == pytest.approx(0.96)
        assert abs(rtp - target) <= 0.001 * target, game


def test_slot_closed_form_matches_full_enumeration():
    stats = slot.rtp_stats(DEFAULT_SLOT)
    assert stats.rtp == pytest.approx(slot.expected_rtp(DEFAULT_SLOT), abs=1e-12)
    assert stats.stddev <= 2.0
    # bets on the 0.01 grid's denominator are paid exactly; tiny bets lose the fraction
    assert slot.expected_rtp(DEFAULT_SLOT, bet=100) == pytest.approx(stats.rtp, abs=1e-12)
    assert (
        slot.expected_rtp(DEFAULT_SLOT, bet=1) < slot.expected_rtp(DEFAULT_SLOT, bet=10) < stats.rtp
    )


def test_gacha_pity_rates_match_the_markov_chain():
    """Push the pity-counter distribution through the chain until it is stationary and
    compare the top-tier share with the closed form used by the exact RTP."""
    weights = [r.weight for r in DEFAULT_GACHA.rarities]
    p = weights[-1] / sum(weights)
    n = DEFAULT_GACHA.pity_threshold
    dist = [1.0] + [0.0] * (n - 1)
    for _ in range(5000):
        nxt = [0.0] * n
        for c, mass in enumerate(dist):
            top = 1.0 if c == n - 1 else p
            nxt[0] += mass * top
            if c < n - 1:
                nxt[c + 1] += mass * (1 - top)
        dist = nxt
    top_share = sum(mass * (1.0 if c == n - 1 else p) for c, mass in enumerate(dist))
    assert odds.gacha_rarity_rates(DEFAULT_GACHA)[-1] == pytest.approx(top_share, rel=1e-9)


def test_slot_simulated_rtp(seeds):
    stats = slot.rtp_stats(DEFAULT_SLOT)
    n = _rounds(stats)
    bet = payout = 0
    for nonce in range(n):
        r = slot.play(
            DEFAULT_SLOT, fairness.floats(seeds.server_seed, seeds.client_seed, nonce), 100
        )
        bet += r.bet
        payout += r.payout
    measured = payout / bet
    _report("slot", DEFAULT_SLOT.target_rtp, stats.rtp, measured, stats.stddev, n)
    _check(measured, DEFAULT_SLOT.target_rtp)


def test_gacha_simulated_rtp_with_pity_carried_over(seeds):
    stats = gacha.rtp_stats(DEFAULT_GACHA)
    n = _rounds(stats, pulls_per_round=5.5)  # rounds alternate 1-pulls and 10-pulls
    bet = payout = pity = 0
    for nonce in range(n):
        rng = fairness.floats(seeds.server_seed, seeds.client_seed, nonce)
        r = gacha.play(DEFAULT_GACHA, rng, count=10 if nonce % 2 else 1, pity=pity)
        pity = r.pity
        bet += r.bet
        payout += r.payout
    measured = payout / bet
    pulls = bet // DEFAULT_GACHA.cost
    _report("gacha", DEFAULT_GACHA.target_rtp, stats.rtp, measured, stats.stddev, n, pulls)
    _check(measured, DEFAULT_GACHA.target_rtp)


def test_rps_simulated_rtp(seeds):
    stats = rps.rtp_stats(DEFAULT_RPS)
    n = _rounds(stats)
    bet = payout = 0
    for nonce in range(n):
        rng = fairness.floats(seeds.server_seed, seeds.client_seed, nonce)
        r = rps.play(DEFAULT_RPS, rng, 100, RPS_CHOICES[nonce % 3])
        bet += r.bet
        payout += r.payout
    measured = payout / bet
    _report("rps", DEFAULT_RPS.target_rtp, stats.rtp, measured, stats.stddev, n)
    _check(measured, DEFAULT_RPS.target_rtp)


def test_crash_simulated_rtp_over_several_cashout_targets(seeds):
    per_target = [crash.rtp_stats(DEFAULT_CRASH, a) for a in CRASH_TARGETS]
    mixed = RtpStats(
        rtp=sum(s.rtp for s in per_target) / len(per_target),
        stddev=math.sqrt(sum(s.stddev**2 for s in per_target) / len(per_target)),
        hit_rate=0.0,
        win_rate=0.0,
    )
    n = _rounds(mixed)
    bet = payout = 0
    for nonce in range(n):
        rng = fairness.floats(seeds.server_seed, seeds.client_seed, nonce)
        r = crash.play(DEFAULT_CRASH, rng, 100, CRASH_TARGETS[nonce % len(CRASH_TARGETS)])
        bet += r.bet
        payout += r.payout
    measured = payout / bet
    _report("crash", DEFAULT_CRASH.target_rtp, mixed.rtp, measured, mixed.stddev, n)
    _check(measured, DEFAULT_CRASH.target_rtp)
