"""Which Kafka topic and key each event goes to, and which envelopes are refused (pure).

Topics and keys follow seed 002 §3: the key is the entity whose events must stay in
order, because Kafka orders messages only within a partition and the default
partitioner (murmur2 of the key, the same as the Java client's) sends one key to one
partition.

======================  ====================  =========================================
event type              topic                 key (UTF-8 decimal unless noted)
======================  ====================  =========================================
auth.signup/login       ``auth.events``       ``user_id``
event.participate       ``event.progress``    ``user_id``
event.progress          ``event.progress``    ``user_id`` (see below)
event.claim             ``event.claim``       ``payload.event_id`` (the live event)
mission.progress        ``mission.progress``  ``user_id`` (see below)
mission.claim           ``mission.claim``     ``payload.mission_id``
reward.granted          ``reward.granted``    ``user_id``
streak.claim            ``reward.granted``    ``user_id``
admin.adjust            ``reward.granted``    ``user_id``
shop.purchase           ``shop.purchase``     ``user_id``
shop.settlement         ``shop.purchase``     ``user_id``
game.round              ``game.session``      ``payload.session_id``, else ``user:<id>``
game.session.start/end  ``game.session``      ``payload.session_id``
achievement.unlocked    ``user.events``       ``user_id``
user.level_up           ``user.events``       ``user_id``
user.action             ``user.events``       ``user_id``
======================  ====================  =========================================

Why the departures from the seed's table:

* **Progress is keyed by player, not by live event or mission.** The worker emits one
  ``event.progress`` (``mission.progress``) envelope per player and batch, listing every
  event (mission) that batch advanced (``payload.items``). The order that matters is per
  participation — ``progress_version`` counts up per (player, event) row — and every
  envelope about a participation is that player's, so one key per player keeps each
  participation's updates in order on one partition. Keying by the event id would mean
  either splitting an envelope (the value would no longer be the envelope, and its
  ``event_id`` would no longer identify one message for dedupe) or a key that depends on
  which other events shared the batch, which sends one participation's updates to
  different partitions and lets them overtake each other. It also spreads a popular
  event's players over all partitions instead of one hot partition. ``event.participate``
  goes to the same topic and key, so a player's join precedes their progress on it.
* **Gold granted outside games and the shop** is one per-player ordered topic:
  ``reward.granted`` (event and mission claims already emit it), plus ``streak.claim`` and
  ``admin.adjust``, which emit no ``reward.granted`` of their own; balance audit reads a
  player's grants in order there. Consumers tell them apart by the ``event_type`` header.
* **Settlements** (a conversion settled or voided later) follow their purchase on
  ``shop.purchase`` under the same player key, so they never overtake it.
* **Rounds** belong to their game session when they have one (``game.session``, key
  ``session_id``, the topic's key). A round played outside a session has no session to
  order it by; it is keyed ``user:<user_id>`` — prefixed so a consumer can never take a
  player id for a session id — which keeps a player's sessionless rounds in order.
* **Player progression** (``user.level_up``, ``achievement.unlocked``, ``user.action``)
  has no topic in the seed; it goes to ``user.events``, keyed by player.

Refused envelopes (:class:`Invalid`) — not JSON, not an object, missing or mistyped
required fields (``schema_version``, ``event_id``, ``event_type``, ``user_id``, ``ts``,
``payload``), or no key — go to ``<topic>.dlq`` of the topic their type routes to, with
the reason; an unknown or missing ``event_type`` (whose topic cannot be known) goes to
``unrouted.dlq``. Every topic name gets the deployment's prefix (:func:`topic_name`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ccweb import events

AUTH_EVENTS = "auth.events"
EVENT_PROGRESS = "event.progress"
EVENT_CLAIM = "event.claim"
MISSION_PROGRESS = "mission.progress"
MISSION_CLAIM = "mission.claim"
REWARD_GRANTED = "reward.granted"
SHOP_PURCHASE = "shop.purchase"
GAME_SESSION = "game.session"
USER_EVENTS = "user.events"

DLQ_SUFFIX = ".dlq"
UNROUTED_DLQ = "unrouted.dlq"  # entries whose event type is unknown or missing

REQUIRED_FIELDS = ("schema_version", "event_id", "event_type", "user_id", "ts", "payload")


def dlq_of(topic: str) -> str:
    return topic + DLQ_SUFFIX


def topic_name(prefix: str, topic: str) -> str:
    """The broker's name of a (base) topic: ``<prefix><topic>`` (tests and shared brokers
    use a prefix such as ``t1a2b.``; production none)."""
    return f"{prefix}{topic}"


def _int_id(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    text = str(value)
    return text or None


def _user(env: Mapping[str, Any]) -> str | None:
    return _int_id(env.get("user_id"))


def _payload_field(name: str) -> Callable[[Mapping[str, Any]], str | None]:
    def key(env: Mapping[str, Any]) -> str | None:
        return _int_id(env["payload"].get(name))

    return key


def _round_key(env: Mapping[str, Any]) -> str | None:
    session = _int_id(env["payload"].get("session_id"))
    if session is not None:
        return session
    user = _user(env)
    return None if user is None else f"user:{user}"


@dataclass(frozen=True)
class Route:
    topic: str
    key_field: str  # what the key is, for error messages and docs
    key_of: Callable[[Mapping[str, Any]], str | None]


_BY_USER = ("user_id", _user)

ROUTES: dict[str, Route] = {
    events.AUTH_SIGNUP: Route(AUTH_EVENTS, *_BY_USER),
    events.AUTH_LOGIN: Route(AUTH_EVENTS, *_BY_USER),
    events.EVENT_PARTICIPATE: Route(EVENT_PROGRESS, *_BY_USER),
    events.EVENT_PROGRESS: Route(EVENT_PROGRESS, *_BY_USER),
    events.EVENT_CLAIM: Route(EVENT_CLAIM, "payload.event_id", _payload_field("event_id")),
    events.MISSION_PROGRESS: Route(MISSION_PROGRESS, *_BY_USER),
    events.MISSION_CLAIM: Route(MISSION_CLAIM, "payload.mission_id", _payload_field("mission_id")),
    events.REWARD_GRANTED: Route(REWARD_GRANTED, *_BY_USER),
    events.STREAK_CLAIM: Route(REWARD_GRANTED, *_BY_USER),
    events.ADMIN_ADJUST: Route(REWARD_GRANTED, *_BY_USER),
    events.SHOP_PURCHASE: Route(SHOP_PURCHASE, *_BY_USER),
    events.SHOP_SETTLEMENT: Route(SHOP_PURCHASE, *_BY_USER),
    events.GAME_ROUND: Route(GAME_SESSION, "payload.session_id or user_id", _round_key),
    events.GAME_SESSION_START: Route(
        GAME_SESSION, "payload.session_id", _payload_field("session_id")
    ),
    events.GAME_SESSION_END: Route(
        GAME_SESSION, "payload.session_id", _payload_field("session_id")
    ),
    events.ACHIEVEMENT_UNLOCKED: Route(USER_EVENTS, *_BY_USER),
    events.USER_LEVEL_UP: Route(USER_EVENTS, *_BY_USER),
    events.USER_ACTION: Route(USER_EVENTS, *_BY_USER),
}

TOPICS: tuple[str, ...] = tuple(sorted({r.topic for r in ROUTES.values()}))
DLQ_TOPICS: tuple[str, ...] = (*(dlq_of(t) for t in TOPICS), UNROUTED_DLQ)


@dataclass(frozen=True)
class Routed:
    """A valid envelope: send ``value`` (the envelope's JSON, unchanged) to ``topic``."""

    topic: str
    key: str
    event_id: str
    event_type: str


@dataclass(frozen=True)
class Invalid:
    """A refused envelope: goes to the dead-letter topic ``dlq`` with ``error``."""

    dlq: str
    error: str
    event_id: str | None
    event_type: str | None


def _dlq_for(event_type: Any) -> str:
    route = ROUTES.get(event_type) if isinstance(event_type, str) else None
    return UNROUTED_DLQ if route is None else dlq_of(route.topic)


def _field_error(env: Mapping[str, Any]) -> str | None:
    missing = [f for f in REQUIRED_FIELDS if f not in env]
    if missing:
        return f"missing required field(s): {', '.join(missing)}"
    checks: list[tuple[str, bool]] = [
        ("schema_version", isinstance(env["schema_version"], int)),
        ("event_id", isinstance(env["event_id"], str) and bool(env["event_id"])),
        (
            "user_id",
            env["user_id"] is None
            or (isinstance(env["user_id"], int) and not isinstance(env["user_id"], bool)),
        ),
        ("ts", isinstance(env["ts"], str) and _is_ts(env["ts"])),
        ("payload", isinstance(env["payload"], dict)),
    ]
    bad = [name for name, ok in checks if not ok or isinstance(env[name], bool)]
    if bad:
        return "malformed field(s): " + ", ".join(f"{n}={env[n]!r}"[:120] for n in bad)
    return None


def _is_ts(value: str) -> bool:
    try:
        events.parse_ts(value)
    except ValueError:
        return False
    return True


def classify(data: str | bytes, stream_event_type: str = "") -> Routed | Invalid:
    """Route one stream entry's envelope (its ``data`` field). ``stream_event_type`` (the
    entry's own ``event_type`` field) picks the dead-letter topic when ``data`` cannot be
    read at all."""
    try:
        env = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        return Invalid(_dlq_for(stream_event_type), f"invalid JSON: {exc}", None, None)
    if not isinstance(env, dict):
        return Invalid(
            _dlq_for(stream_event_type),
            f"envelope is a JSON {type(env).__name__}, not an object",
            None,
            None,
        )
    event_id = env.get("event_id") if isinstance(env.get("event_id"), str) else None
    event_type = env.get("event_type")
    if not isinstance(event_type, str) or event_type not in ROUTES:
        error = (
            "missing required field(s): event_type"
            if event_type is None
            else f"unknown event_type {event_type!r}"[:200]
        )
        return Invalid(
            UNROUTED_DLQ, error, event_id, event_type if isinstance(event_type, str) else None
        )
    route = ROUTES[event_type]
    field_error = _field_error(env)
    if field_error is not None:
        return Invalid(dlq_of(route.topic), field_error, event_id, event_type)
    key = route.key_of(env)
    if key is None:
        return Invalid(
            dlq_of(route.topic),
            f"no key: {route.key_field} is missing or not an id",
            event_id,
            event_type,
        )
    assert event_id is not None  # checked by _field_error
    return Routed(route.topic, key, event_id, event_type)
