"""Kafka routing (ccweb.kafka.topics): every event type has a topic and a key, and every
way an envelope can be malformed sends it to the right dead-letter topic."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ccweb import events
from ccweb.config import Settings
from ccweb.kafka import topics
from ccweb.kafka.provision import specs

S = Settings()


def env(event_type: str, user_id: int | None = 7, **payload: Any) -> dict[str, Any]:
    return events.make_envelope(event_type, user_id, payload, settings=S)


def route(e: dict[str, Any] | str, stream_type: str = "") -> topics.Routed | topics.Invalid:
    return topics.classify(e if isinstance(e, str) else json.dumps(e), stream_type)


def test_every_event_type_routes_to_a_provisioned_topic() -> None:
    assert set(topics.ROUTES) == set(events.EVENT_TYPES)
    assert set(topics.TOPICS) == {
        "auth.events",
        "event.progress",
        "event.claim",
        "mission.progress",
        "mission.claim",
        "reward.granted",
        "shop.purchase",
        "game.session",
        "user.events",
    }
    provisioned = {s.name for s in specs()}
    for r in topics.ROUTES.values():
        assert r.topic in provisioned and topics.dlq_of(r.topic) in provisioned
    assert topics.UNROUTED_DLQ in provisioned


@pytest.mark.parametrize(
    ("event_type", "payload", "topic", "key"),
    [
        (events.AUTH_SIGNUP, {"site_id": "s"}, "auth.events", "7"),
        (events.AUTH_LOGIN, {"admin": False}, "auth.events", "7"),
        (events.EVENT_PARTICIPATE, {"event_id": 55}, "event.progress", "7"),
        (
            events.EVENT_PROGRESS,
            {"items": [{"event_id": 55}, {"event_id": 56}]},
            "event.progress",
            "7",
        ),
        (events.EVENT_CLAIM, {"event_id": 55, "source_id": 55}, "event.claim", "55"),
        (events.MISSION_PROGRESS, {"items": [{"mission_id": 3}]}, "mission.progress", "7"),
        (events.MISSION_CLAIM, {"mission_id": 3}, "mission.claim", "3"),
        (events.REWARD_GRANTED, {"event_id": 55}, "reward.granted", "7"),
        (events.STREAK_CLAIM, {"count": 2}, "reward.granted", "7"),
        (events.ADMIN_ADJUST, {"delta": 5}, "reward.granted", "7"),
        (events.SHOP_PURCHASE, {"tx_id": "t1"}, "shop.purchase", "7"),
        (events.SHOP_SETTLEMENT, {"tx_id": "t1"}, "shop.purchase", "7"),
        (events.GAME_ROUND, {"round_id": 1, "session_id": 901}, "game.session", "901"),
        (events.GAME_ROUND, {"round_id": 1, "session_id": None}, "game.session", "user:7"),
        (events.GAME_SESSION_START, {"session_id": 901}, "game.session", "901"),
        (events.GAME_SESSION_END, {"session_id": 901}, "game.session", "901"),
        (events.ACHIEVEMENT_UNLOCKED, {"achievement_id": 1}, "user.events", "7"),
        (events.USER_LEVEL_UP, {"level": 2}, "user.events", "7"),
        (events.USER_ACTION, {"action_id": 1}, "user.events", "7"),
    ],
)
def test_topic_and_key(event_type: str, payload: dict, topic: str, key: str) -> None:
    e = env(event_type, **payload)
    assert route(e) == topics.Routed(topic, key, e["event_id"], event_type)


def test_a_progress_key_does_not_depend_on_which_events_share_the_envelope() -> None:
    one = route(env(events.EVENT_PROGRESS, items=[{"event_id": 55}]))
    two = route(env(events.EVENT_PROGRESS, items=[{"event_id": 56}, {"event_id": 55}]))
    assert isinstance(one, topics.Routed) and isinstance(two, topics.Routed)
    assert one.key == two.key == "7"


@pytest.mark.parametrize(
    ("mutate", "dlq", "error"),
    [
        (lambda e: e.pop("ts"), "auth.events.dlq", "missing required field(s): ts"),
        (lambda e: e.pop("payload"), "auth.events.dlq", "missing required field(s): payload"),
        (lambda e: e.pop("schema_version"), "auth.events.dlq", "schema_version"),
        (lambda e: e.pop("user_id"), "auth.events.dlq", "missing required field(s): user_id"),
        (lambda e: e.pop("event_id"), "auth.events.dlq", "missing required field(s): event_id"),
        (lambda e: e.update(ts="yesterday"), "auth.events.dlq", "malformed field(s): ts"),
        (lambda e: e.update(ts="2025-01-01T00:00:00"), "auth.events.dlq", "ts="),
        (lambda e: e.update(user_id="7"), "auth.events.dlq", "malformed field(s): user_id"),
        (lambda e: e.update(user_id=True), "auth.events.dlq", "user_id"),
        (lambda e: e.update(payload=[1]), "auth.events.dlq", "malformed field(s): payload"),
        (lambda e: e.update(user_id=None), "auth.events.dlq", "no key: user_id"),
        (lambda e: e.update(event_type="auth.logout"), "unrouted.dlq", "unknown event_type"),
        (lambda e: e.pop("event_type"), "unrouted.dlq", "missing required field(s): event_type"),
    ],
)
def test_invalid_envelopes_go_to_the_dlq(mutate: Any, dlq: str, error: str) -> None:
    e = env(events.AUTH_LOGIN)
    mutate(e)
    got = route(e, events.AUTH_LOGIN)
    assert isinstance(got, topics.Invalid), got
    assert got.dlq == dlq
    assert error in got.error


def test_claim_and_session_keys_are_required() -> None:
    got = route(env(events.EVENT_CLAIM, source_id=55))
    assert isinstance(got, topics.Invalid)
    assert (got.dlq, got.error) == (
        "event.claim.dlq",
        "no key: payload.event_id is missing or not an id",
    )
    got = route(env(events.GAME_SESSION_END, session_id=None))
    assert isinstance(got, topics.Invalid) and got.dlq == "game.session.dlq"
    # a sessionless round of nobody has nothing to be ordered by
    got = route(env(events.GAME_ROUND, user_id=None, session_id=None))
    assert isinstance(got, topics.Invalid) and got.dlq == "game.session.dlq"


def test_unreadable_data_goes_to_the_dlq_of_the_streams_event_type() -> None:
    got = route("{not json", events.SHOP_PURCHASE)
    assert isinstance(got, topics.Invalid)
    assert got.dlq == "shop.purchase.dlq" and got.error.startswith("invalid JSON")
    assert route("[1, 2]", events.SHOP_PURCHASE) == topics.Invalid(
        "shop.purchase.dlq", "envelope is a JSON list, not an object", None, None
    )
    got = route("{not json", "")
    assert isinstance(got, topics.Invalid) and got.dlq == "unrouted.dlq"


def test_topic_names_carry_the_prefix_and_dlqs_have_one_partition() -> None:
    assert topics.topic_name("t1.", "auth.events") == "t1.auth.events"
    by_name = {s.name: s for s in specs("t1.", partitions=6, retention_hours=2)}
    assert by_name["t1.auth.events"].partitions == 6
    assert by_name["t1.auth.events"].retention_ms == 2 * 3_600_000
    assert by_name["t1.auth.events.dlq"].partitions == 1
    assert by_name["t1.unrouted.dlq"].partitions == 1
    assert len(by_name) == 2 * len(topics.TOPICS) + 1
