"""Config validation and calibration: pays are derived from the target, not hand-tuned."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ccweb.games import config, odds
from ccweb.games.config import (
    DEFAULT_CRASH,
    DEFAULT_GACHA,
    DEFAULT_RPS,
    DEFAULT_SLOT,
    CrashConfig,
    Rarity,
    SlotPay,
)
from ccweb.games.engines import gacha, rps, slot


def test_defaults_are_valid():
    for cfg in (DEFAULT_SLOT, DEFAULT_GACHA, DEFAULT_RPS, DEFAULT_CRASH):
        assert config.validate(cfg) is cfg


@pytest.mark.parametrize("target", [0.85, 0.9, 0.98, 1.0])
def test_calibration_hits_any_target(target):
    s = odds.calibrate_slot(replace(DEFAULT_SLOT, target_rtp=target))
    g = odds.calibrate_gacha(replace(DEFAULT_GACHA, target_rtp=target))
    r = odds.calibrate_rps(replace(DEFAULT_RPS, target_rtp=target))
    for cfg, exact in (
        (s, slot.expected_rtp(s)),
        (g, gacha.expected_rtp(g)),
        (r, rps.expected_rtp(r)),
    ):
        config.validate(cfg)
        assert abs(exact - target) <= 0.001 * target, type(cfg).__name__
    # calibration keeps the published shape: drop rates and strips are untouched
    assert [x.weight for x in g.rarities] == [x.weight for x in DEFAULT_GACHA.rarities]
    assert s.strips == DEFAULT_SLOT.strips


def test_round_to_target_picks_the_closest_grid_combination():
    # plain rounding would give 0.99; the search rounds one value up instead
    picked = odds.round_to_target([0.3334, 0.3333, 0.3333], [1.0, 1.0, 1.0], 0.01, 1.0)
    assert sorted(picked) == [0.33, 0.33, 0.34]
    assert odds.round_to_target([0.5], [1.0], 0.01, 0.7) == [0.5]  # already on the grid


BAD = [
    replace(DEFAULT_SLOT, target_rtp=0.0),
    replace(DEFAULT_SLOT, target_rtp=1.2),
    replace(DEFAULT_SLOT, max_bet=0),
    replace(DEFAULT_SLOT, paytable={**DEFAULT_SLOT.paytable, "cherry": SlotPay(1.234)}),
    replace(DEFAULT_SLOT, paytable={k: v for k, v in DEFAULT_SLOT.paytable.items() if k != "bar"}),
    replace(DEFAULT_SLOT, paylines=((0, 1, 3),)),
    replace(DEFAULT_SLOT, strips=DEFAULT_SLOT.strips[:2]),
    replace(
        DEFAULT_GACHA,
        rarities=(replace(DEFAULT_GACHA.rarities[0], weight=0), *DEFAULT_GACHA.rarities[1:]),
    ),
    replace(DEFAULT_GACHA, rarities=(*DEFAULT_GACHA.rarities, Rarity("mythic", 1, 5000, (1001,)))),
    replace(DEFAULT_GACHA, rarities=DEFAULT_GACHA.rarities[:1]),
    replace(DEFAULT_GACHA, pity_threshold=0),
    replace(DEFAULT_GACHA, cost=0),
    replace(DEFAULT_RPS, win_multiplier=1.885),
    CrashConfig(house_edge=0.0),
    CrashConfig(house_edge=0.04005),
    CrashConfig(min_auto_cashout=1.0),
    CrashConfig(max_auto_cashout=1.005),
]


@pytest.mark.parametrize("cfg", BAD, ids=lambda c: type(c).__name__)
def test_bad_configs_are_rejected(cfg):
    with pytest.raises(ValueError):
        config.validate(cfg)
