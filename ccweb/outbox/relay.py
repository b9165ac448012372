"""The outbox relay: publishes rows the fast path missed, in id order, then marks them.

Runs inside the worker (``worker.relay``). Rows younger than ``relay_grace_s`` are left
to the fast path; several relays may run (one per worker), an advisory lock lets one of
them publish at a time.
Publishing is idempotent (see :mod:`ccweb.outbox.publisher`), so a relay killed between
XADD and the UPDATE re-publishes nothing when it comes back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from sqlalchemy import text

from ccweb.config import Settings, get_settings
from ccweb.db import unit_of_work
from ccweb.outbox.publisher import Publisher

log = logging.getLogger(__name__)

_CLAIM = text(
    """
    SELECT id, partition, envelope::text AS envelope
    FROM outbox
    WHERE published_at IS NULL AND created_at < now() - make_interval(secs => :grace)
    ORDER BY id
    LIMIT :limit
    """
)
# One relay at a time publishes (several may run for availability). A transaction-level
# advisory lock instead of FOR UPDATE SKIP LOCKED: row locks would write every tuple once
# more before it is marked, and order across relays is simpler with a single publisher.
_RELAY_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext('cc.outbox.relay'))")
_MARK = text("UPDATE outbox SET published_at = now() WHERE id = ANY(:ids)")


def relay_once(
    client: redis.Redis,
    settings: Settings | None = None,
    *,
    limit: int = 500,
    grace_s: float | None = None,
    after_publish: Callable[[], None] | None = None,
) -> int:
    """Publish and mark one batch; returns how many rows it handled.

    ``after_publish`` runs between XADD and marking: the crash-recovery test kills the
    relay process there, the worst moment for exactly-once delivery.
    """
    settings = settings or get_settings()
    grace = settings.relay_grace_s if grace_s is None else grace_s
    publisher = Publisher(client, settings)
    with unit_of_work() as session:
        if not session.execute(_RELAY_LOCK).scalar():
            return 0
        rows = session.execute(_CLAIM, {"grace": grace, "limit": limit}).all()
        if not rows:
            return 0
        publisher.publish(((r.partition, r.envelope) for r in rows), path="relay")
        if after_publish is not None:
            after_publish()
        session.execute(_MARK, {"ids": [r.id for r in rows]})
    return len(rows)


def pending_count() -> int:
    with unit_of_work() as session:
        return int(
            session.execute(text("SELECT count(*) FROM outbox WHERE published_at IS NULL")).scalar()
            or 0
        )
