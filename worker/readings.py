"""Gauges of shared state, read by the worker that runs the outbox relay.

Some numbers an operator alerts on are not events a process sees but the state of the
database: how many outbox rows the relay has yet to confirm (seed 002 §11
``outbox_pending``), and how many conversion purchases still wait for their provider
(seed 003 §1.2 ``settlement_pending``). The relay thread takes them every
:data:`EVERY_S` — by the clock, not per idle pass, so a relay that is busy with a
backlog (exactly when the outbox number matters) still reports it. Each reading is an
index-only count (the outbox cursor's range; ``ix_shop_purchases_pending``, a partial
index on the pending rows).

Every worker that runs a relay reports the same readings, so a dashboard reads them
with ``max()``, never ``sum()``; the gauges are ``livemostrecent`` for a process that
runs under prometheus_client's multiprocess collector.
"""

from __future__ import annotations

from sqlalchemy import text

from ccweb.db import autocommit
from ccweb.metrics import OUTBOX_PENDING, SHOP_SETTLEMENT_OLDEST_PENDING, SHOP_SETTLEMENT_PENDING
from ccweb.outbox.relay import pending_count

EVERY_S = 5.0

_SETTLEMENT = text(
    """
    SELECT count(*) AS pending,
           coalesce(extract(epoch FROM now() - min(created_at)), 0) AS oldest_s
    FROM shop_purchases WHERE settlement_status = 'pending'
    """
)


def take() -> None:
    """Read every gauge now (a store outage propagates to the relay's handling)."""
    OUTBOX_PENDING.set(pending_count())
    with autocommit() as conn:
        row = conn.execute(_SETTLEMENT).one()
    SHOP_SETTLEMENT_PENDING.set(int(row.pending))
    SHOP_SETTLEMENT_OLDEST_PENDING.set(max(0.0, float(row.oldest_s)))
