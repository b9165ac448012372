"""The outbox relay: publishes rows the fast path may have missed, in order, behind a
cursor — without writing to the rows.

Every outbox row carries the id of the transaction that wrote it (``txid``). A
transaction id below the current snapshot's ``xmin`` belongs to a transaction that has
finished, so its rows are visible now or never will be. The relay therefore walks rows
with ``(txid, id)`` after its cursor and ``txid < xmin``, in that order, publishes them
(idempotently, see :mod:`ccweb.outbox.publisher`) and moves the cursor — one small
update per batch instead of one per row. Rows younger than ``relay_grace_s`` are left
to the fast path for a moment: the walk stops at the first one. A relay killed between
XADD and moving the cursor re-publishes the batch, which the dedupe script ignores.

Several relays may run (one per worker): the cursor row is locked with SKIP LOCKED, so
one publishes at a time. A transaction that stays open holds the relay back (its
rows' place in the order is not known until it ends); the fast path is unaffected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import redis
from sqlalchemy import text

from ccweb.config import Settings, get_settings
from ccweb.db import unit_of_work
from ccweb.outbox.publisher import Publisher

log = logging.getLogger(__name__)

CURSOR = "default"
_ENSURE = text(
    "INSERT INTO outbox_relay_cursor (name) VALUES (:name) ON CONFLICT (name) DO NOTHING"
)
_LOCK = text(
    "SELECT txid, last_id FROM outbox_relay_cursor WHERE name = :name FOR UPDATE SKIP LOCKED"
)
_BATCH = text(
    """
    SELECT o.id, o.txid, o.partition, o.event_id::text AS event_id, o.event_type,
           o.user_id, o.created_at
    FROM outbox o
    WHERE (o.txid, o.id) > (:txid, :last_id)
      AND o.txid < ((pg_snapshot_xmin(pg_current_snapshot()))::text)::bigint
    ORDER BY o.txid, o.id
    LIMIT :limit
    """
)
_ENVELOPES = text("SELECT id, envelope::text AS envelope FROM outbox WHERE id = ANY(:ids)")
_MOVE = text(
    "UPDATE outbox_relay_cursor SET txid = :txid, last_id = :last_id, updated_at = now()"
    " WHERE name = :name"
)


def relay_once(
    client: redis.Redis,
    settings: Settings | None = None,
    *,
    limit: int = 500,
    grace_s: float | None = None,
    after_publish: Callable[[], None] | None = None,
) -> int:
    """Publish one batch and move the cursor; returns how many rows it passed.

    ``after_publish`` runs between XADD and moving the cursor: the crash-recovery test
    kills the relay process there, the worst moment for exactly-once delivery.
    """
    settings = settings or get_settings()
    grace = timedelta(seconds=settings.relay_grace_s if grace_s is None else grace_s)
    with unit_of_work() as session:
        session.execute(_ENSURE, {"name": CURSOR})
        cursor = session.execute(_LOCK, {"name": CURSOR}).one_or_none()
        if cursor is None:
            return 0  # another relay holds the cursor
        rows = session.execute(
            _BATCH, {"txid": cursor.txid, "last_id": cursor.last_id, "limit": limit}
        ).all()
        cutoff = datetime.now(UTC) - grace
        ready = []
        for r in rows:
            if r.created_at > cutoff:
                break  # leave it (and everything after it) to the fast path for now
            ready.append(r)
        if not ready:
            return 0

        def envelopes(ids: list[int]) -> dict[int, str]:
            found = session.execute(_ENVELOPES, {"ids": ids}).all()
            return {int(f.id): f.envelope for f in found}

        Publisher(client, settings).publish_rows(
            [(r.partition, r.event_id, r.event_type, r.user_id, r.id) for r in ready],
            envelopes,
            path="relay",
        )
        if after_publish is not None:
            after_publish()
        last = ready[-1]
        session.execute(_MOVE, {"txid": last.txid, "last_id": last.id, "name": CURSOR})
    return len(ready)


# The backlog in two statements: the cursor first, then the rows after it with the cursor
# as parameters (an index range scan). A join on the cursor table made PostgreSQL walk
# the whole (txid, id) index: ~280 ms at 1 M outbox rows.
CURSOR_POSITION = text(
    "SELECT coalesce(max(txid), 0) AS txid, coalesce(max(last_id), 0) AS last_id"
    " FROM outbox_relay_cursor WHERE name = :name"
)
BACKLOG = text(
    """
    SELECT (SELECT count(*) FROM outbox WHERE (txid, id) > (:txid, :last_id)) AS pending,
           (SELECT extract(epoch FROM now() - created_at) FROM outbox
            WHERE (txid, id) > (:txid, :last_id) ORDER BY txid, id LIMIT 1) AS oldest_s
    """
)


def pending_count() -> int:
    """Rows not yet behind the relay's cursor (the outbox lag)."""
    with unit_of_work() as session:
        cursor = session.execute(CURSOR_POSITION, {"name": CURSOR}).one()
        row = session.execute(BACKLOG, {"txid": cursor.txid, "last_id": cursor.last_id}).one()
        return int(row.pending or 0)


def prune(retention: timedelta, batch: int = 5000, max_batches: int = 50) -> int:
    """Delete published rows older than ``retention`` (the outbox is a buffer, not the
    event history: that lives in Kafka/ClickHouse). Deletes in batches (short
    transactions) until nothing old is left or ``max_batches`` ran, so it keeps up with
    any sustained write rate when called every minute."""
    total = 0
    for _ in range(max_batches):
        with unit_of_work() as session:
            result = session.execute(
                text(
                    """
                    DELETE FROM outbox WHERE id IN (
                        SELECT o.id FROM outbox o JOIN outbox_relay_cursor c ON c.name = :name
                        WHERE (o.txid, o.id) <= (c.txid, c.last_id) AND o.created_at < :cutoff
                        ORDER BY o.txid, o.id LIMIT :batch)
                    """
                ),
                {"name": CURSOR, "cutoff": datetime.now(UTC) - retention, "batch": batch},
            )
            n = int(getattr(result, "rowcount", 0) or 0)
        total += n
        if n < batch:
            break
    return total
