"""Idempotent consumers: remember processed event ids in the handler's transaction."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

_CLAIM = text(
    """
    INSERT INTO processed_events (consumer, event_id)
    SELECT :consumer, CAST(e AS uuid) FROM unnest(CAST(:ids AS text[])) AS e
    ON CONFLICT DO NOTHING
    RETURNING event_id::text
    """
)


def claim_new(session: Session, consumer: str, event_ids: Iterable[str]) -> set[str]:
    """Record the ids for ``consumer``; returns the ones never processed before. Because
    this runs in the same transaction as the handler's effects, a crash before commit
    forgets both, and a redelivery after commit is skipped."""
    ids = list(dict.fromkeys(event_ids))
    if not ids:
        return set()
    return {r[0] for r in session.execute(_CLAIM, {"consumer": consumer, "ids": ids})}
