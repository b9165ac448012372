"""Gacha rules: batch sizes and cost, weighted tiers, and the pity guarantee."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from ccweb.games.config import DEFAULT_GACHA
from ccweb.games.engines import gacha
from ccweb.games.errors import GameInputError

TOP = DEFAULT_GACHA.top.name
N = DEFAULT_GACHA.pity_threshold


def test_ten_pull_returns_ten_items_for_ten_times_the_cost(seeds):
    r = gacha.play(DEFAULT_GACHA, seeds.round_floats(), count=10)
    assert r.count == 10 and len(r.items) == 10
    assert r.bet == 10 * DEFAULT_GACHA.cost
    assert r.payout == sum(item.value for item in r.items)
    single = gacha.play(DEFAULT_GACHA, seeds.advanced().round_floats(), count=1)
    assert len(single.items) == 1 and single.bet == DEFAULT_GACHA.cost
    body = r.to_dict()
    assert body["game_type"] == "gacha"
    assert set(body["items"][0]) >= {"item_id", "rarity"}


def test_items_and_values_come_from_their_tier(seeds):
    by_id = {i: r for r in DEFAULT_GACHA.rarities for i in r.item_ids}
    for _ in range(200):
        r = gacha.play(DEFAULT_GACHA, seeds.round_floats(), count=10)
        seeds = seeds.advanced()
        for item in r.items:
            tier = by_id[item.item_id]
            assert item.rarity == tier.name
            assert item.value == tier.item_value(tier.item_ids.index(item.item_id))


def test_pity_forces_the_top_tier_on_the_nth_dry_pull():
    zeros = iter([0.0] * 2)  # u = 0 would be the most common tier
    r = gacha.play(DEFAULT_GACHA, zeros, count=1, pity=N - 1)
    assert r.items[0].rarity == TOP and r.items[0].guaranteed
    assert r.pity_before == N - 1 and r.pity == 0 and r.pulls_to_guarantee == N


def test_ten_pull_applies_pity_inside_the_batch():
    r = gacha.play(DEFAULT_GACHA, iter([0.0] * 20), count=10, pity=N - 3)
    tiers = [item.rarity for item in r.items]
    assert tiers[:2] == [DEFAULT_GACHA.rarities[0].name] * 2
    assert tiers[2] == TOP and r.items[2].guaranteed
    assert TOP not in tiers[3:]
    assert r.pity == 7 and r.pulls_to_guarantee == N - 7


def test_natural_top_pull_resets_the_counter():
    just_below_one = 1 - 2**-32  # lands in the last (top) tier by weight
    r = gacha.play(DEFAULT_GACHA, iter([just_below_one, 0.0]), count=1, pity=5)
    assert r.items[0].rarity == TOP and not r.items[0].guaranteed and r.pity == 0


def test_a_lowered_threshold_still_guarantees():
    lowered = replace(DEFAULT_GACHA, pity_threshold=10)
    r = gacha.play(lowered, iter([0.0] * 2), count=1, pity=N - 1)
    assert r.items[0].guaranteed and r.pity == 0


def test_never_more_than_n_minus_1_dry_pulls_over_a_long_run(seeds):
    pity = dry = longest = guaranteed = 0
    tiers: Counter[str] = Counter()
    for nonce in range(20_000):
        rng = seeds.round_floats()
        seeds = seeds.advanced()
        r = gacha.play(DEFAULT_GACHA, rng, count=10 if nonce % 3 else 1, pity=pity)
        for item in r.items:
            tiers[item.rarity] += 1
            dry = 0 if item.rarity == TOP else dry + 1
            longest = max(longest, dry)
            guaranteed += item.guaranteed
            assert not item.guaranteed or item.rarity == TOP
        assert r.pity == dry  # the returned counter is the dry streak
        pity = r.pity
    assert longest == N - 1  # reached (so the guarantee was exercised) and never exceeded
    assert guaranteed > 0
    pulls = sum(tiers.values())
    weights = {r.name: r.weight for r in DEFAULT_GACHA.rarities}
    # non-top tiers keep their published proportions
    ratio = tiers["common"] / tiers["rare"]
    assert ratio == pytest.approx(weights["common"] / weights["rare"], rel=0.05)
    assert pulls > 100_000


@pytest.mark.parametrize("count", [0, 2, 5, 11, -1, "10", 10.0, True, None])
def test_count_must_be_1_or_10(count, seeds):
    with pytest.raises(GameInputError) as err:
        gacha.play(DEFAULT_GACHA, seeds.round_floats(), count=count)
    assert err.value.field == "count"


def test_pity_counter_is_server_state_and_must_be_sane(seeds):
    with pytest.raises(ValueError):
        gacha.play(DEFAULT_GACHA, seeds.round_floats(), count=1, pity=-1)
