"""Idempotent consumers: remember processed event ids in the handler's transaction, and
forget them after ``CC_PROCESSED_RETENTION_H`` (longer than any path that can deliver an
event again: reclaim after 30 s, the relay within the outbox retention)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from ccweb import pg
from ccweb.db import unit_of_work

_CLAIM = """
    INSERT INTO processed_events (consumer, event_id)
    SELECT :consumer, CAST(e AS uuid) FROM unnest(CAST(:ids AS text[])) AS e
    ON CONFLICT DO NOTHING
    RETURNING event_id::text AS event_id
"""  # a prepared statement (ccweb.pg): it runs for every batch of every group


def claim_new(session: Session, consumer: str, event_ids: Iterable[str]) -> set[str]:
    """Record the ids for ``consumer``; returns the ones never processed before. Because
    this runs in the same transaction as the handler's effects, a crash before commit
    forgets both, and a redelivery after commit is skipped."""
    ids = list(dict.fromkeys(event_ids))
    if not ids:
        return set()
    rows = pg.execute(session, _CLAIM, {"consumer": consumer, "ids": ids}, {"ids": "text[]"})
    return {r["event_id"] for r in rows}


_PRUNE = text(
    """
    DELETE FROM processed_events WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM processed_events WHERE processed_at < :cutoff LIMIT :batch))
    """
)


def prune_processed(retention: timedelta, batch: int = 10_000, max_batches: int = 50) -> int:
    """Delete processed-event records older than ``retention``, in short batches (the
    BRIN index on ``processed_at`` finds them without scanning the table)."""
    total = 0
    cutoff = datetime.now(UTC) - retention
    for _ in range(max_batches):
        with unit_of_work() as session:
            n = int(
                getattr(session.execute(_PRUNE, {"cutoff": cutoff, "batch": batch}), "rowcount", 0)
                or 0
            )
        total += n
        if n < batch:
            break
    return total
