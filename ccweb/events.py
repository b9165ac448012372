"""The event envelope and event type names: the contract between web, worker and sinks.

Every outbox row, Redis Stream entry and Kafka message carries the same envelope
(SPEC §4). Streams are partitioned by player so per-player order holds within a
partition: ``<prefix>:events:{p}`` with ``p = crc32(user_id) mod N``.
"""

from __future__ import annotations

import uuid
import zlib
from datetime import UTC, datetime
from typing import Any

from ccweb.clock import utcnow as utcnow  # re-exported: the envelope's and callers' clock
from ccweb.config import Settings, get_settings

SCHEMA_VERSION = 1

AUTH_SIGNUP = "auth.signup"
AUTH_LOGIN = "auth.login"
STREAK_CLAIM = "streak.claim"
GAME_ROUND = "game.round"
GAME_SESSION_START = "game.session.start"
GAME_SESSION_END = "game.session.end"
EVENT_PARTICIPATE = "event.participate"
EVENT_PROGRESS = "event.progress"
EVENT_CLAIM = "event.claim"
MISSION_PROGRESS = "mission.progress"
MISSION_CLAIM = "mission.claim"
REWARD_GRANTED = "reward.granted"
SHOP_PURCHASE = "shop.purchase"
SHOP_SETTLEMENT = "shop.settlement"  # a conversion settled or voided (ccweb.shop.settlement)
ACHIEVEMENT_UNLOCKED = "achievement.unlocked"
ADMIN_ADJUST = "admin.adjust"
USER_LEVEL_UP = "user.level_up"
USER_ACTION = "user.action"

EVENT_TYPES = frozenset(
    {
        AUTH_SIGNUP,
        AUTH_LOGIN,
        STREAK_CLAIM,
        GAME_ROUND,
        GAME_SESSION_START,
        GAME_SESSION_END,
        EVENT_PARTICIPATE,
        EVENT_PROGRESS,
        EVENT_CLAIM,
        MISSION_PROGRESS,
        MISSION_CLAIM,
        REWARD_GRANTED,
        SHOP_PURCHASE,
        SHOP_SETTLEMENT,
        ACHIEVEMENT_UNLOCKED,
        ADMIN_ADJUST,
        USER_LEVEL_UP,
        USER_ACTION,
    }
)


# Events the system derives from a player's own events (the worker's progress output):
# not player activity of their own, so activity counting skips them.
DERIVED_EVENT_TYPES = frozenset({EVENT_PROGRESS, MISSION_PROGRESS, ACHIEVEMENT_UNLOCKED})
# Events that do not make a player active that day (DAU): the derived ones, and a
# payment provider settling a conversion (the player did nothing).
NOT_PLAYER_ACTIVITY = DERIVED_EVENT_TYPES | {SHOP_SETTLEMENT}


def iso(dt: datetime | None) -> str | None:
    """ISO-8601 UTC with ``Z`` (SPEC §2)."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_ts(value: str) -> datetime:
    """Inverse of :func:`iso` (accepts any ISO-8601 offset); always timezone-aware UTC."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"timestamp without timezone: {value!r}")
    return dt.astimezone(UTC)


def partition_of(user_id: int | None, settings: Settings | None = None) -> int:
    settings = settings or get_settings()
    if user_id is None:
        return 0
    return zlib.crc32(str(user_id).encode()) % settings.stream_partitions


def stream_key(partition: int, settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    return f"{settings.redis_prefix}:events:{{{partition}}}"


def all_stream_keys(settings: Settings | None = None) -> list[str]:
    settings = settings or get_settings()
    return [stream_key(p, settings) for p in range(settings.stream_partitions)]


def dlq_key(settings: Settings) -> str:
    """The dead-letter stream (worker.dlq)."""
    return f"{settings.redis_prefix}:dlq"


def retry_key(settings: Settings, group: str) -> str:
    """The stream only ``group`` reads: replayed dead letters (entries deleted once
    acked)."""
    return f"{settings.redis_prefix}:retry:{group}"


def make_envelope(
    event_type: str,
    user_id: int | None,
    payload: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    trace_id: str | None = None,
    service: str = "ccweb",
    settings: Settings | None = None,
) -> dict[str, Any]:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    settings = settings or get_settings()
    event_id = str(uuid.uuid4())
    return {
        "schema_version": SCHEMA_VERSION,
        "event_id": event_id,
        "event_type": event_type,
        "user_id": user_id,
        "ts": iso(utcnow()),
        "trace_id": trace_id or event_id,
        "source": {"service": service, "host": settings.hostname},
        "payload": payload,
        "dedupe_key": dedupe_key or event_id,
    }
