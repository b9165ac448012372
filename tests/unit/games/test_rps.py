"""Rock-paper-scissors: uniform house hand, the 3×3 settlement table, choice validation."""

from __future__ import annotations

from collections import Counter

import pytest

from ccweb.games.config import DEFAULT_RPS
from ccweb.games.engines import rps
from ccweb.games.errors import GameInputError

HAND_FLOAT = {"rock": 0.0, "paper": 0.5, "scissors": 0.99}


@pytest.mark.parametrize(
    ("choice", "house", "outcome", "payout"),
    [
        ("rock", "scissors", "win", 188),
        ("paper", "rock", "win", 188),
        ("scissors", "paper", "win", 188),
        ("rock", "rock", "draw", 100),
        ("paper", "paper", "draw", 100),
        ("scissors", "scissors", "draw", 100),
        ("rock", "paper", "lose", 0),
        ("paper", "scissors", "lose", 0),
        ("scissors", "rock", "lose", 0),
    ],
)
def test_settlement_table(choice, house, outcome, payout):
    assert DEFAULT_RPS.win_multiplier == 1.88  # 3 × 0.96 − 1, derived from the target
    r = rps.play(DEFAULT_RPS, iter([HAND_FLOAT[house]]), 100, choice)
    assert (r.choice, r.house_choice, r.outcome, r.payout) == (choice, house, outcome, payout)
    assert r.to_dict()["house_choice"] == house


def test_house_hand_is_uniform(seeds):
    hands: Counter[str] = Counter()
    for _ in range(30_000):
        hands[rps.play(DEFAULT_RPS, seeds.round_floats(), 10, "rock").house_choice] += 1
        seeds = seeds.advanced()
    assert set(hands) == set(rps.CHOICES)
    assert all(abs(n / 30_000 - 1 / 3) < 0.015 for n in hands.values())


def test_floor_of_a_small_win():
    r = rps.play(DEFAULT_RPS, iter([HAND_FLOAT["scissors"]]), 10, "rock")
    assert r.payout == 18  # floor(10 × 1.88)


@pytest.mark.parametrize("choice", ["Rock", "lizard", "", None, 1, ["rock"]])
def test_unknown_choice_is_rejected(choice, seeds):
    with pytest.raises(GameInputError) as err:
        rps.play(DEFAULT_RPS, seeds.round_floats(), 10, choice)
    assert err.value.field == "choice"
