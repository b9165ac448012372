"""Crash: the crash-point law, the boundary win rule, auto_cashout validation."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ccweb.games.config import DEFAULT_CRASH
from ccweb.games.engines import crash
from ccweb.games.errors import GameInputError

EDGE = DEFAULT_CRASH.house_edge


def test_crash_point_law(seeds):
    n = 100_000
    points = []
    for _ in range(n):
        points.append(crash.crash_point_cents(DEFAULT_CRASH, next(seeds.round_floats())))
        seeds = seeds.advanced()
    assert min(points) == 100  # instant crashes exist and nothing is below 1.00
    for x, tol in ((1.01, 0.004), (2.0, 0.008), (10.0, 0.005)):
        share = sum(p >= round(x * 100) for p in points) / n
        assert share == pytest.approx((1 - EDGE) / x, abs=tol), x
        assert crash.win_probability(DEFAULT_CRASH, x) == pytest.approx((1 - EDGE) / x, rel=1e-6)


def test_crash_point_formula_on_exact_floats():
    assert crash.crash_point_cents(DEFAULT_CRASH, 0.0) == 100  # 0.96 → instant crash
    assert crash.crash_point_cents(DEFAULT_CRASH, 0.5) == 192  # 0.96 / 0.5
    assert crash.crash_point_cents(DEFAULT_CRASH, 0.75) == 384  # 0.96 / 0.25


def _u_for_exactly(hundredths: int) -> float:
    """The smallest stream float whose crash point is ``hundredths``/100 or more."""
    m = ((10_000 - DEFAULT_CRASH.edge_bp) * 100 * 2**32) // (hundredths * 10_000)
    return (2**32 - m) / 2**32


def test_cashout_equal_to_the_crash_point_wins():
    u = _u_for_exactly(200)
    assert crash.crash_point_cents(DEFAULT_CRASH, u) == 200
    win = crash.play(DEFAULT_CRASH, iter([u]), 75, 2.0)
    assert (win.crash_point, win.cashed_out_at, win.payout, win.outcome) == (2.0, 2.0, 150, "win")
    lose = crash.play(DEFAULT_CRASH, iter([u]), 75, 2.01)
    assert (lose.crash_point, lose.cashed_out_at, lose.payout, lose.outcome) == (
        2.0,
        None,
        0,
        "lose",
    )
    below = crash.crash_point_cents(DEFAULT_CRASH, u - 2**-32)
    assert below == 199


def test_payout_is_floored_and_outcome_follows_whole_gold():
    r = crash.play(DEFAULT_CRASH, iter([0.99]), 50, 1.01)
    assert r.payout == 50 and r.outcome == "draw"  # floor(50.5): the stake back
    r = crash.play(DEFAULT_CRASH, iter([0.99]), 100, 1.01)
    assert r.payout == 101 and r.outcome == "win"
    body = r.to_dict()
    assert body["game_type"] == "crash" and body["cashed_out_at"] == 1.01


@pytest.mark.parametrize("target", [2, 2.5, Decimal("3.33"), 1.01, 1000])
def test_accepted_cashout_targets(target, seeds):
    r = crash.play(DEFAULT_CRASH, seeds.round_floats(), 10, target)
    assert r.auto_cashout == float(target)


@pytest.mark.parametrize(
    "target",
    [1.0, 1, 1.005, 0, -2, 1000.01, 10**9, "2.0", True, None, float("nan"), float("inf"), 2.001],
)
def test_bad_cashout_targets(target, seeds):
    with pytest.raises(GameInputError) as err:
        crash.play(DEFAULT_CRASH, seeds.round_floats(), 10, target)
    assert err.value.field == "auto_cashout"
