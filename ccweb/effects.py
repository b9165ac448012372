"""What a unit of work does after it commits: one object per unit of work.

A committed change has consequences outside PostgreSQL: its events are published to the
streams at once (the fast path; the outbox relay covers for a miss), the cached views of
the players it changed are invalidated (version bumps), process-local caches are
forgotten, and — soon — realtime pushes go out. They must happen only after the data is
durable, never for a rolled-back change, and cheaply: every Redis command of one unit of
work (and, in the web server, of every request finishing at that moment) goes in ONE
pipeline (:mod:`ccweb.redis_flush`).

Every unit of work has one :class:`Effects`:

* a session (``db.unit_of_work()`` / ``db.in_transaction()``): :func:`of` gives the
  session's object, which runs after its commit and is dropped by a rollback;
* a single autocommit statement (a game round): the caller makes an ``Effects()``, adds
  to it once the statement returned, and calls :meth:`Effects.run`.

Writers say *what* changed (``emit``, ``publish``, ``touch``); they never talk to Redis
or to a cache. The database layer knows nothing of this beyond "call this after commit".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from ccweb import db, failpoints, player_versions, redis_flush
from ccweb.events import make_envelope
from ccweb.outbox import writer
from ccweb.outbox.publisher import Publisher
from ccweb.redis_client import get_redis

log = logging.getLogger(__name__)

# False models a process that dies right after commit (tests), or leaves all publishing
# to the relay.
FAST_PATH_ENABLED = True


class Effects:
    """The after-commit effects of one unit of work."""

    __slots__ = ("_callbacks", "content", "counters", "events", "players")

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.players: set[int] = set()
        self.content = False
        self.counters: set[str] = set()
        self._callbacks: list[Callable[[], Any]] = []

    def publish(self, *envelopes: dict[str, Any]) -> None:
        """Publish these envelopes (already written to the outbox) after commit."""
        self.events.extend(envelopes)

    def touch(self, *user_ids: int) -> None:
        """These players changed: their cached views render again after commit."""
        self.players.update(user_ids)

    def touch_content(self) -> None:
        """Content every player sees changed (an event or mission was edited)."""
        self.content = True

    def bump(self, *version_keys: str) -> None:
        """INCR these Redis version keys after commit (a shared cache keyed on them, e.g.
        the shop catalog's stock version, renders again)."""
        self.counters.update(version_keys)

    def after(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` after commit (process-local work, e.g. forgetting a cached seed)."""
        self._callbacks.append(fn)

    def run(self) -> None:
        """Carry the effects out. Best effort: a failure is logged, never raised — the
        change is committed and the response must say so (the relay publishes what the
        fast path missed; cached views also expire by TTL)."""
        failpoints.hit("after_commit")  # the worst moment to die: committed, nothing sent
        fills: list[redis_flush.Fill] = []
        if self.events and FAST_PATH_ENABLED:
            published = list(self.events)
            fills.append(lambda pipe: _queue_publish(pipe, published))
        if self.players or self.content or self.counters:
            players, content, counters = set(self.players), self.content, set(self.counters)
            fills.append(lambda pipe: player_versions.queue_bumps(pipe, players, content, counters))
        redis_flush.run(fills)
        for fn in self._callbacks:
            try:
                fn()
            except Exception:
                log.exception("after-commit callback failed")


def _queue_publish(pipe: Any, envelopes: list[dict[str, Any]]) -> None:
    try:
        Publisher(get_redis()).queue_envelopes(pipe, envelopes)
    except Exception:
        log.warning(
            "fast-path publish not queued; leaving %d events to the relay",
            len(envelopes),
            exc_info=True,
        )


def of(session: Session) -> Effects:
    """The effects of ``session``'s unit of work (created on first use; run after its
    commit, dropped by a rollback)."""
    fx: Effects | None = session.info.get("effects")
    if fx is None:
        fx = session.info["effects"] = Effects()
        db.after_commit(session, fx.run)
    return fx


def add(session: Session, envelope: dict[str, Any]) -> dict[str, Any]:
    """Write ``envelope`` to the outbox in this transaction and publish it after commit.
    Call it outside savepoints: rolling back only a savepoint would remove the row but not
    the publish (which the consumers' event-id dedupe would then have to absorb)."""
    writer.insert(session, envelope)
    of(session).publish(envelope)
    return envelope


def add_many(session: Session, envelopes: list[dict[str, Any]]) -> None:
    """:func:`add` for a whole batch in one statement (consumers that emit per batch)."""
    if envelopes:
        writer.insert_many(session, envelopes)
        of(session).publish(*envelopes)


def emit(
    session: Session,
    event_type: str,
    user_id: int | None,
    payload: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    trace_id: str | None = None,
    service: str = "ccweb",
) -> dict[str, Any]:
    """Build an envelope (SPEC §4), write it to this transaction's outbox, publish it
    after commit."""
    envelope = make_envelope(
        event_type, user_id, payload, dedupe_key=dedupe_key, trace_id=trace_id, service=service
    )
    return add(session, envelope)
