"""Pure LiveOps rules: facts from envelopes, progress arithmetic, periods, rewards."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from ccweb import events
from ccweb.liveops.rules import (
    Fact,
    advance,
    complete,
    fact_from_envelope,
    period_end,
    period_start,
    progress_out,
    reward_totals,
)
from ccweb.liveops.schemas import Requirement, RewardItem

TS = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def envelope(event_type: str, payload: dict, user_id: object = 7) -> dict:
    return {
        "event_id": "e1",
        "event_type": event_type,
        "user_id": user_id,
        "ts": "2026-11-22T12:00:00Z",
        "payload": payload,
    }


def test_a_round_becomes_plays_wins_spend_and_payout():
    f = fact_from_envelope(
        envelope(
            events.GAME_ROUND, {"game_type": "rps", "bet": 50, "payout": 100, "outcome": "win"}
        )
    )
    assert f == Fact("e1", 7, TS, "rps", {"plays": 1, "wins": 1, "spend_gold": 50, "win_gold": 100})
    lost = fact_from_envelope(
        envelope(
            events.GAME_ROUND, {"game_type": "slot", "bet": 10, "payout": 0, "outcome": "lose"}
        )
    )
    assert lost is not None and lost.amounts["wins"] == 0


def test_streak_claims_are_levels_purchases_are_spend_and_other_events_are_ignored():
    streak = fact_from_envelope(envelope(events.STREAK_CLAIM, {"count": 4}))
    assert streak is not None and streak.levels == {"streak_days": 4} and not streak.amounts
    shop = fact_from_envelope(envelope(events.SHOP_PURCHASE, {"price_gold": 900}))
    assert shop is not None and shop.amounts == {"spend_gold": 900}
    assert fact_from_envelope(envelope(events.SHOP_PURCHASE, {"price_gold": 0})) is None
    refused = {"status": "failed", "reason": "OUT_OF_STOCK", "price_gold": 900}
    assert fact_from_envelope(envelope(events.SHOP_PURCHASE, refused)) is None
    ok = {"status": "success", "price_gold": 900}
    assert fact_from_envelope(envelope(events.SHOP_PURCHASE, ok)).amounts == {"spend_gold": 900}
    assert fact_from_envelope(envelope(events.EVENT_PROGRESS, {"items": []})) is None


@pytest.mark.parametrize(
    "env",
    [
        envelope(
            events.GAME_ROUND, {"game_type": "slot", "bet": "10", "payout": 0, "outcome": "x"}
        ),
        envelope(events.GAME_ROUND, {"game_type": "slot", "bet": -1, "payout": 0, "outcome": "x"}),
        envelope(
            events.GAME_ROUND, {"game_type": "slot", "bet": True, "payout": 0, "outcome": "x"}
        ),
        envelope(events.GAME_ROUND, {"game_type": "slot", "payout": 0, "outcome": "x"}),
        envelope(events.STREAK_CLAIM, {"count": 1}, user_id="7"),
        {**envelope(events.STREAK_CLAIM, {"count": 1}), "ts": "2026-11-22T12:00:00"},
    ],
)
def test_malformed_envelopes_raise_so_the_worker_can_dead_letter_them(env):
    with pytest.raises((ValueError, KeyError, TypeError)):
        fact_from_envelope(env)


def test_advance_adds_amounts_maxes_levels_filters_games_and_caps_at_target():
    reqs = [
        {"type": "plays", "target": 3},
        {"type": "plays", "game_type": "slot", "target": 10},
        {"type": "streak_days", "target": 5},
    ]
    facts = [
        Fact("a", 1, TS, "slot", {"plays": 1}),
        Fact("b", 1, TS, "crash", {"plays": 1}),
        Fact("c", 1, TS, levels={"streak_days": 4}),
        Fact("d", 1, TS, levels={"streak_days": 2}),
        Fact("e", 1, TS, "slot", {"plays": 1}),
        Fact("f", 1, TS, "slot", {"plays": 1}),
    ]
    new = advance(reqs, [0, 0, 0], facts)
    assert new == [3, 3, 4]  # 4 plays capped at 3; only slot rounds; max streak
    assert not complete(reqs, new)
    assert complete(reqs[:1], new[:1])
    assert advance(reqs, [0], []) == [0, 0, 0]  # short arrays are padded


def test_progress_shape_and_reward_totals():
    reqs = [{"type": "wins", "game_type": "rps", "target": 2}, {"type": "plays", "target": 5}]
    assert progress_out(reqs, [1]) == [
        {"type": "wins", "current": 1, "game_type": "rps", "target": 2},
        {"type": "plays", "current": 0, "target": 5},
    ]
    items = [
        {"type": "gold", "amount": 100},
        {"type": "gold", "amount": 50},
        {"type": "xp", "amount": 20},
        {"type": "item", "amount": 2, "code": "ticket"},
        {"type": "item", "amount": 1, "code": "ticket"},
    ]
    assert reward_totals(items) == (150, 20, {"ticket": 3})


def test_periods_reset_at_utc_midnight_and_on_monday():
    sunday, monday = date(2026, 11, 22), date(2026, 11, 23)
    assert period_start("daily", sunday) == sunday
    assert period_start("weekly", sunday) == date(2026, 11, 16)
    assert period_start("weekly", monday) == monday
    assert period_end("daily", sunday) == monday
    assert period_end("weekly", date(2026, 11, 16)) == monday


def test_requirement_and_reward_shapes_are_validated():
    assert Requirement.model_validate({"type": "plays", "target": 1}).game_type is None
    for bad in (
        {"type": "plays", "target": 0},
        {"type": "max_win", "target": 1},  # achievements only
        {"type": "streak_days", "game_type": "slot", "target": 1},
        {"type": "plays", "game_type": "poker", "target": 1},
    ):
        with pytest.raises(ValidationError):
            Requirement.model_validate(bad)
    with pytest.raises(ValidationError):
        RewardItem.model_validate({"type": "item", "amount": 1})
    with pytest.raises(ValidationError):
        RewardItem.model_validate({"type": "gold", "amount": 1, "code": "x1"})
