"""The outbox relay: publishes rows the fast path missed, in id order, then marks them.

Runs inside the worker (``worker.relay``). Rows younger than ``relay_grace_s`` are left
to the fast path; ``FOR UPDATE SKIP LOCKED`` lets several relays run side by side.
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
    FOR UPDATE SKIP LOCKED
    """
)
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
