"""Slot rules: the 3×3 window comes from the strips, lines and multiplier explain the payout."""

from __future__ import annotations

from fractions import Fraction

from ccweb.games.config import DEFAULT_SLOT
from ccweb.games.engines import slot


def _cherries_in_the_middle() -> tuple[list[int], list[float]]:
    """Stops showing cherry in the middle row of every reel, and floats that land there."""
    strips = DEFAULT_SLOT.strips
    stops = [next(s for s in range(len(st)) if st[(s + 1) % len(st)] == "cherry") for st in strips]
    return stops, [(s + 0.5) / len(st) for s, st in zip(stops, strips, strict=True)]


def test_reels_are_3x3_consecutive_strip_symbols(seeds):
    symbols = set(DEFAULT_SLOT.paytable)
    for _ in range(300):
        r = slot.play(DEFAULT_SLOT, seeds.round_floats(), 100)
        seeds = seeds.advanced()
        assert len(r.reels) == 3 and all(len(reel) == 3 for reel in r.reels)
        for reel, strip, stop in zip(r.reels, DEFAULT_SLOT.strips, r.stops, strict=True):
            assert set(reel) <= symbols
            assert reel == tuple(strip[(stop + row) % len(strip)] for row in range(3))


def test_lines_and_multiplier_explain_the_payout(seeds):
    saw_three = saw_two = saw_blank = False
    for _ in range(2000):
        bet = 1 + seeds.nonce * 7 % 10_000
        r = slot.play(DEFAULT_SLOT, seeds.round_floats(), bet)
        seeds = seeds.advanced()
        # recompute every payline independently of the engine
        expected = []
        for index, rows in enumerate(DEFAULT_SLOT.paylines):
            a, b, c = (r.reels[reel][row] for reel, row in enumerate(rows))
            if a == b:
                pay = DEFAULT_SLOT.paytable[a]
                mult = pay.three if c == a else pay.two
                if mult:
                    expected.append((index, rows, a, 3 if c == a else 2, mult))
        got = [(w.line, w.rows, w.symbol, w.count, w.multiplier) for w in r.lines]
        assert got == expected
        total = sum(Fraction(str(w.multiplier)) for w in r.lines)
        assert Fraction(str(r.multiplier)) == total
        assert r.payout == int(bet * total)  # floor: both are non-negative
        assert r.outcome == ("win" if r.payout > bet else "draw" if r.payout == bet else "lose")
        assert r.gold_delta == r.payout - bet
        saw_three |= any(w.count == 3 for w in r.lines)
        saw_two |= any(w.count == 2 for w in r.lines)
        saw_blank |= not r.lines
    assert saw_three and saw_two and saw_blank


def test_three_of_a_kind_on_the_middle_line():
    stops, rng = _cherries_in_the_middle()
    r = slot.play(DEFAULT_SLOT, iter(rng), 100)
    assert tuple(stops) == r.stops
    assert [reel[1] for reel in r.reels] == ["cherry"] * 3
    middle = [w for w in r.lines if w.rows == (1, 1, 1)]
    assert len(middle) == 1 and middle[0].symbol == "cherry" and middle[0].count == 3
    assert middle[0].multiplier == DEFAULT_SLOT.paytable["cherry"].three
    assert r.payout == round(r.multiplier * 100)


def test_small_bets_are_floored_to_whole_gold():
    # the same spin at bet 1 pays floor(1 × multiplier): a 1.24× line is a draw, not a win
    _, rng = _cherries_in_the_middle()
    r = slot.play(DEFAULT_SLOT, iter(rng), 1)
    assert r.payout == int(r.multiplier)
    assert r.outcome == ("win" if r.payout > 1 else "draw" if r.payout == 1 else "lose")


def test_to_dict_has_the_response_fields(seeds):
    body = slot.play(DEFAULT_SLOT, seeds.round_floats(), 100).to_dict()
    assert {
        "game_type",
        "bet",
        "payout",
        "gold_delta",
        "outcome",
        "reels",
        "lines",
        "multiplier",
    } <= set(body)
    assert body["game_type"] == "slot"
