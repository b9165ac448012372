"""Pure functions: partitioning, envelopes, levels, flag targeting, settings checks."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from ccweb.config import Settings
from ccweb.events import make_envelope, partition_of, stream_key
from ccweb.flags.rules import Flag, applies
from ccweb.users.levels import level_for_xp


def test_partition_is_stable_and_spreads_players(settings):
    assert partition_of(42, settings) == partition_of(42, settings)
    counts = Counter(partition_of(uid, settings) for uid in range(1, 4001))
    assert set(counts) == set(range(settings.stream_partitions))
    assert min(counts.values()) > 4000 / settings.stream_partitions * 0.8
    assert stream_key(3, settings) == f"{settings.redis_prefix}:events:{{3}}"


def test_envelope_has_the_spec_fields(settings):
    env = make_envelope("game.round", 7, {"bet": 10}, settings=settings)
    assert set(env) == {
        "schema_version",
        "event_id",
        "event_type",
        "user_id",
        "ts",
        "trace_id",
        "source",
        "payload",
        "dedupe_key",
    }
    assert env["schema_version"] == 1 and uuid.UUID(env["event_id"])
    assert env["ts"].endswith("Z") and set(env["source"]) == {"service", "host"}
    with pytest.raises(ValueError):
        make_envelope("no.such.type", 7, {}, settings=settings)


@pytest.mark.parametrize(("xp", "level"), [(0, 1), (499, 1), (500, 2), (999, 2), (12_345, 25)])
def test_level_formula(xp, level):
    assert level_for_xp(xp) == level


def test_flag_targeting_by_tier_and_stable_rollout():
    vip = Flag("f", True, "bool", target_tiers=("VIP",))
    assert applies(vip, 1, "VIP", None) and not applies(vip, 1, "STANDARD", None)
    half = Flag("g", True, "bool", rollout_percent=50)
    picks = [applies(half, uid, "STANDARD", None) for uid in range(2000)]
    assert 0.4 < sum(picks) / len(picks) < 0.6
    assert picks == [applies(half, uid, "STANDARD", None) for uid in range(2000)]
    none = Flag("g", True, "bool", rollout_percent=0)
    assert not any(applies(none, u, "VIP", None) for u in range(100))


def test_production_refuses_the_default_jwt_secret():
    with pytest.raises(RuntimeError):
        Settings(env="prod").check()
    with pytest.raises(RuntimeError):
        Settings(jwt_secret="short").check()
    assert Settings(env="prod", jwt_secret="x" * 40).check().env == "prod"


def test_consumers_must_remember_events_longer_than_the_outbox_keeps_them():
    with pytest.raises(RuntimeError, match="CC_PROCESSED_RETENTION_H"):
        Settings(outbox_retention_h=24, processed_retention_h=24).check()
    assert Settings(outbox_retention_h=24, processed_retention_h=25).check()
