"""Bad player input raises GameInputError naming the field, before any randomness is used."""

from __future__ import annotations

import pytest

from ccweb.games.config import DEFAULT_CRASH, DEFAULT_RPS, DEFAULT_SLOT
from ccweb.games.engines import crash, rps, slot
from ccweb.games.errors import GameInputError

PLAYS = {
    "slot": lambda rng, bet: slot.play(DEFAULT_SLOT, rng, bet),
    "rps": lambda rng, bet: rps.play(DEFAULT_RPS, rng, bet, "rock"),
    "crash": lambda rng, bet: crash.play(DEFAULT_CRASH, rng, bet, 2.0),
}
MAX_BET = {"slot": DEFAULT_SLOT.max_bet, "rps": DEFAULT_RPS.max_bet, "crash": DEFAULT_CRASH.max_bet}


@pytest.mark.parametrize("game", sorted(PLAYS))
@pytest.mark.parametrize("bet", [0, -5, "max+1", 1.5, 10.0, "10", True, None])
def test_bad_bets(game, bet):
    if bet == "max+1":
        bet = MAX_BET[game] + 1
    untouched = iter([0.5] * 8)
    with pytest.raises(GameInputError) as err:
        PLAYS[game](untouched, bet)
    assert err.value.field == "bet"
    assert len(list(untouched)) == 8  # nothing drawn for a rejected round


@pytest.mark.parametrize("game", sorted(PLAYS))
def test_bet_limits_are_inclusive(game):
    for bet in (1, MAX_BET[game]):
        assert PLAYS[game](iter([0.5] * 8), bet).bet == bet
