"""Flag rules: type checks, targeting, and a rollout that only ever adds players."""

from __future__ import annotations

import pytest

from ccweb.flags import registry
from ccweb.flags.rules import Flag, applies, bucket, check_value, client_view, resolve, type_of
from ccweb.games.models import GAME_TYPES


@pytest.mark.parametrize(
    ("value_type", "value", "ok"),
    [
        ("bool", True, True),
        ("bool", "false", False),
        ("bool", 0, False),
        ("number", 10, True),
        ("number", 2.5, True),
        ("number", "10", False),
        ("number", True, False),  # a bool is not a number, though Python says it is an int
        ("string", "blue", True),
        ("string", 5, False),
        ("string", "x" * 1001, False),
        ("json", {"a": [1]}, True),
        ("json", [1, 2], True),
        ("json", "text", False),
        ("json", {"big": "x" * 20_000}, False),
        ("bool", None, False),
        ("color", "red", False),
    ],
)
def test_check_value(value_type, value, ok):
    assert (check_value(value_type, value) is None) is ok


def test_type_of_a_new_flag_is_its_values_type():
    assert [type_of(v) for v in (False, 3, 1.5, "s", {}, [])] == [
        "bool",
        "number",
        "number",
        "string",
        "json",
        "json",
    ]


def test_rollout_is_stable_and_only_adds_players_as_it_grows():
    players = range(1, 5001)
    previous: set[int] = set()
    for pct in (0, 1, 5, 10, 25, 50, 75, 99, 100):
        flag = Flag("ui.new_lobby", True, "bool", rollout_percent=pct)
        inside = {u for u in players if applies(flag, u, "STANDARD", None)}
        assert previous <= inside, f"a player left the rollout at {pct}%"
        assert abs(len(inside) / len(players) - pct / 100) < 0.03
        # asked again (another process, another day): the same answer
        assert inside == {u for u in players if applies(flag, u, "STANDARD", None)}
        previous = inside
    assert previous == set(players)


def test_flags_pick_independent_populations():
    a = {u for u in range(4000) if bucket("a", u) < 5000}
    b = {u for u in range(4000) if bucket("b", u) < 5000}
    assert 0.2 < len(a & b) / 4000 < 0.3  # ≈ 25 % if independent, 50 % if the same


def test_tier_and_segment_targeting_with_off_values():
    flag = Flag(
        "offer.banner",
        "whale-banner",
        "string",
        target_tiers=("VIP", "PREMIUM"),
        target_segments=("Whale",),
        client_visible=True,
    )
    assert resolve(flag, 1, "VIP", "Whale") == "whale-banner"
    assert resolve(flag, 1, "STANDARD", "Whale") is None
    assert resolve(flag, 1, "VIP", "AtRisk") is None
    assert resolve(flag, 1, "VIP", None) is None  # no segment: not targeted
    assert client_view([flag], 1, "VIP", "Low") == {}
    boolean = Flag("ui.x", True, "bool", target_segments=("AtRisk",), client_visible=True)
    assert client_view([boolean], 1, "STANDARD", "Low") == {"ui.x": False}
    with_off = Flag("ui.y", "b", "string", off_value="a", rollout_percent=0, client_visible=True)
    assert client_view([with_off], 1, None, None) == {"ui.y": "a"}


def test_registry_kill_switches_cover_every_game():
    assert set(registry.GAMES) == set(GAME_TYPES)
    for key, known in registry.KNOWN.items():
        assert check_value(known.value_type, known.default()) is None, key
